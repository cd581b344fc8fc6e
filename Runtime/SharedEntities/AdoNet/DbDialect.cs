using System.Data;
using System.Data.Common;

namespace SharedEntities.AdoNet;

/// <summary>
/// What <see cref="DbEntityLoader"/> needs to know about a database: identifier quoting, how to take a read lock
/// that keeps writers out, the isolation of its own transactions, and which error means "your snapshot is too old".
/// <see cref="PostgreSql"/> is built in; SQLite's is <see cref="Sqlite.SqliteDialect"/>.
/// </summary>
public abstract class DbDialect
{
    /// <summary>PostgreSQL (Npgsql): <c>SELECT … FOR SHARE</c> in a short READ COMMITTED transaction; SQLSTATE 40001 is a stale snapshot.</summary>
    public static DbDialect PostgreSql { get; } = new PostgreSqlDialect();

    /// <summary>The most parameters one statement may carry; larger batches are split.</summary>
    public virtual int MaxParametersPerStatement => 1000;

    /// <summary>The isolation level of the transactions the loader begins itself (commits and locked reads).</summary>
    public abstract IsolationLevel OwnTransactionIsolation { get; }

    /// <summary>Appended to the locked version read (e.g. <c> FOR SHARE</c>); empty when the transaction itself is the lock.</summary>
    public abstract string LockingReadClause { get; }

    /// <summary>Quotes a table or column name.</summary>
    public virtual string Quote(string identifier)
    {
        ArgumentException.ThrowIfNullOrEmpty(identifier);
        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>The name of parameter <paramref name="index"/> as written in SQL and in <see cref="DbParameter.ParameterName"/>.</summary>
    public virtual string ParameterName(int index) => "@p" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// A statement that takes the write lock inside a transaction the application already began, when the locked read
    /// alone does not (SQLite); <see langword="null"/> when it is not needed. It must fail with a stale-snapshot error
    /// if the transaction's snapshot is older than the newest commit.
    /// </summary>
    public virtual string? WriteLockStatement(string quotedTable, string quotedVersionColumn) => null;

    /// <summary>
    /// Whether the loader should run every statement synchronously even on the asynchronous paths (SQLite, whose
    /// driver is synchronous anyway): then what <see cref="EnlistStore"/> sets up flows back to the runtime's caller.
    /// </summary>
    public virtual bool RunsSynchronously => false;

    /// <summary>
    /// Called when the loader holds a transaction that other connections to the same database would wait for (its
    /// own commit transaction or locked read, or a locked read in the application's transaction): lets a store that
    /// lives in the same database run inside it (see <see cref="Sqlite.SqliteSharedStore.EnlistTransaction"/>).
    /// Returns what ends the enlistment, or <see langword="null"/>.
    /// </summary>
    public virtual IDisposable? EnlistStore(DbConnection connection, DbTransaction transaction) => null;

    /// <summary>Whether <paramref name="exception"/> says the transaction's snapshot cannot see a newer commit.</summary>
    public abstract bool IsStaleSnapshot(DbException exception);

    private sealed class PostgreSqlDialect : DbDialect
    {
        public override int MaxParametersPerStatement => 30000;

        public override IsolationLevel OwnTransactionIsolation => IsolationLevel.ReadCommitted;

        public override string LockingReadClause => " FOR SHARE";

        // 40001 serialization_failure: "could not serialize access due to concurrent update", which a locking read in a
        // REPEATABLE READ or SERIALIZABLE transaction raises when the row changed after its snapshot.
        public override bool IsStaleSnapshot(DbException exception) => exception?.SqlState == "40001";
    }
}
