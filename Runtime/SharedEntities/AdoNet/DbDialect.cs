using System.Data;
using System.Data.Common;

namespace SharedEntities.AdoNet;

/// <summary>
/// What <see cref="DbEntityLoader"/> needs to know about a database: identifier quoting, how to take a read lock
/// that keeps writers out, the isolation of its own transactions, and which error means "your snapshot is too old".
/// <see cref="PostgreSql"/> is built in; SQLite's (<c>SqliteDialect</c>) comes with the <c>SharedEntities.Sqlite</c>
/// package. A dialect whose database also holds the store implements <see cref="IStoreEnlistingDialect"/>.
/// </summary>
public abstract class DbDialect
{
    /// <summary>PostgreSQL (Npgsql): <c>SELECT … FOR SHARE</c> in a short READ COMMITTED transaction; SQLSTATE 40001 is a stale snapshot.</summary>
    public static DbDialect PostgreSql { get; } = new PostgreSqlDialect();

    /// <summary>
    /// Whether this dialect is the one for <paramref name="connection"/>'s database. The EF Core integration asks each
    /// registered dialect (and then <see cref="PostgreSql"/>) about a context's connection when none was given to
    /// <c>UseSharedEntities</c>. By default <see langword="false"/>: a dialect that does not override it is used only
    /// when it is passed explicitly.
    /// </summary>
    public virtual bool Supports(DbConnection connection) => false;

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

    /// <summary>Whether <paramref name="exception"/> says the transaction's snapshot cannot see a newer commit.</summary>
    public abstract bool IsStaleSnapshot(DbException exception);

    /// <summary>
    /// The <see cref="DbCommand.CommandTimeout"/> (seconds) of a statement whose waits are bounded by
    /// <paramref name="waitTimeout"/> (<see cref="CoherenceOptions.DatabaseWaitTimeout"/>). By default a backstop one
    /// second behind the timeout rounded up, so that the database's own lock timeout (if the dialect sets one) fires first.
    /// </summary>
    public virtual int CommandTimeoutSeconds(TimeSpan waitTimeout) => (int)Math.Min(int.MaxValue - 1, Math.Ceiling(waitTimeout.TotalSeconds)) + 1;

    /// <summary>
    /// Rewrites <paramref name="sql"/>, a statement that may wait for other sessions' row locks (the locked version
    /// read, a repair's version advance), so that each such wait lasts at most <paramref name="waitTimeout"/>. It runs
    /// in a transaction: <paramref name="ownTransaction"/> says whether it is the loader's own (a setting may then last
    /// until it ends) or the application's (a setting must be given back after the statement). By default <paramref name="sql"/> unchanged: only the command timeout bounds the wait.
    /// </summary>
    public virtual string BoundLockWaits(string sql, TimeSpan waitTimeout, bool ownTransaction) => sql;

    /// <summary>
    /// Begins one of the loader's own transactions whose start may wait for other sessions (SQLite's
    /// <c>BEGIN IMMEDIATE</c> waits for the file's write lock) for at most <paramref name="waitTimeout"/>.
    /// </summary>
    public virtual DbTransaction BeginTransaction(DbConnection connection, IsolationLevel isolationLevel, TimeSpan waitTimeout)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.BeginTransaction(isolationLevel);
    }

    /// <inheritdoc cref="BeginTransaction(DbConnection, IsolationLevel, TimeSpan)"/>
    public virtual ValueTask<DbTransaction> BeginTransactionAsync(
        DbConnection connection, IsolationLevel isolationLevel, TimeSpan waitTimeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.BeginTransactionAsync(isolationLevel, cancellationToken);
    }

    /// <summary>
    /// Whether <paramref name="exception"/> says a wait ran out: the dialect's lock timeout, or the command timeout
    /// (by default: an exception caused by a <see cref="TimeoutException"/>, as Npgsql reports it).
    /// </summary>
    public virtual bool IsWaitTimeout(DbException exception) => exception?.InnerException is TimeoutException;

    /// <summary>
    /// Whether <paramref name="exception"/> says a statement named a column the table does not have (a version column
    /// that no migration added, say). The loader then throws <see cref="MissingColumnException"/>, which names the
    /// mapping's columns and the migration to add. Default: <see langword="false"/>.
    /// </summary>
    public virtual bool IsUndefinedColumn(DbException exception) => false;

    /// <summary>
    /// A new, closed connection to the same database as <paramref name="connection"/> (same provider and settings),
    /// on which the runtime's checks run outside the application's transactions so that they never share a
    /// connection with a data reader the application has open; <see langword="null"/> when no such connection can be
    /// made. <paramref name="connectionString"/> is the string the application configured, if known (an opened
    /// connection's own string may have lost its password). By default: a clone when the connection is
    /// <see cref="ICloneable"/>, else a connection of its <see cref="DbProviderFactory"/> with that string.
    /// </summary>
    public virtual DbConnection? CreateCheckConnection(DbConnection connection, string? connectionString)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (connection is ICloneable cloneable && cloneable.Clone() is DbConnection clone)
        {
            return clone;
        }

        if (string.IsNullOrEmpty(connectionString) || DbProviderFactories.GetFactory(connection) is not { } factory || factory.CreateConnection() is not { } created)
        {
            return null;
        }

        created.ConnectionString = connectionString;
        return created;
    }

    private sealed class PostgreSqlDialect : DbDialect
    {
        // By the connection's namespace: the core has no reference to Npgsql.
        public override bool Supports(DbConnection connection) => connection?.GetType().Namespace == "Npgsql";

        public override int MaxParametersPerStatement => 30000;

        public override IsolationLevel OwnTransactionIsolation => IsolationLevel.ReadCommitted;

        public override string LockingReadClause => " FOR SHARE";

        // 40001 serialization_failure: "could not serialize access due to concurrent update", which a locking read in a
        // REPEATABLE READ or SERIALIZABLE transaction raises when the row changed after its snapshot.
        public override bool IsStaleSnapshot(DbException exception) => exception?.SqlState == "40001";

        // 55P03 lock_not_available (lock_timeout); 57014 query_canceled (statement_timeout, or the cancellation Npgsql
        // sends when the command timeout runs out).
        public override bool IsWaitTimeout(DbException exception) =>
            exception?.SqlState is "55P03" or "57014" || base.IsWaitTimeout(exception!);

        // 42703 undefined_column.
        public override bool IsUndefinedColumn(DbException exception) => exception?.SqlState == "42703";

        // In the loader's own transaction SET LOCAL lasts until it ends, which is what is wanted. In the application's,
        // the setting in force is saved in a custom setting and given back after the statement (a failed statement
        // aborts the transaction, whose rollback gives it back).
        public override string BoundLockWaits(string sql, TimeSpan waitTimeout, bool ownTransaction)
        {
            string ms = ((long)Math.Ceiling(waitTimeout.TotalMilliseconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return ownTransaction
                ? $"SET LOCAL lock_timeout = {ms}; {sql}"
                : "DO 'BEGIN PERFORM set_config(''sharedentities.saved_lock_timeout'', current_setting(''lock_timeout''), true); " +
                  $"PERFORM set_config(''lock_timeout'', ''{ms}'', true); END'; {sql}; " +
                  "DO 'BEGIN PERFORM set_config(''lock_timeout'', current_setting(''sharedentities.saved_lock_timeout''), true); END'";
        }
    }
}
