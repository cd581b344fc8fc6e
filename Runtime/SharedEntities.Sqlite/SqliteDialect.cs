using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using SharedEntities.AdoNet;

namespace SharedEntities.Sqlite;

/// <summary>
/// SQLite for <see cref="DbEntityLoader"/>: the loader's own transactions are <c>BEGIN IMMEDIATE</c> (the write lock,
/// which keeps every other writer of the file out until it ends); inside an application transaction a no-op
/// <c>UPDATE … WHERE 0</c> takes the write lock, and SQLite refuses it with <c>SQLITE_BUSY_SNAPSHOT</c> when the
/// transaction's snapshot is older than the newest commit (WAL mode). The embedded store
/// (<see cref="SqliteSharedStore"/>) lives in the same file: the dialect binds it to the loader's transactions
/// (<see cref="IStoreEnlistingDialect"/>).
/// </summary>
public sealed class SqliteDialect : DbDialect, IStoreEnlistingDialect
{
    private const int SqliteBusySnapshot = 517; // SQLITE_BUSY | (2 << 8)

    private SqliteDialect()
    {
    }

    /// <summary>The instance.</summary>
    public static SqliteDialect Instance { get; } = new();

    /// <inheritdoc/>
    /// <remarks>A Microsoft.Data.Sqlite connection.</remarks>
    public override bool Supports(DbConnection connection) => connection is SqliteConnection;

    /// <inheritdoc/>
    public override int MaxParametersPerStatement => 900;

    /// <inheritdoc/>
    /// <remarks>Microsoft.Data.Sqlite begins <c>BEGIN IMMEDIATE</c> for every level but ReadUncommitted.</remarks>
    public override IsolationLevel OwnTransactionIsolation => IsolationLevel.Serializable;

    /// <inheritdoc/>
    public override string LockingReadClause => "";

    /// <inheritdoc/>
    public override string? WriteLockStatement(string quotedTable, string quotedVersionColumn) =>
        $"UPDATE {quotedTable} SET {quotedVersionColumn} = {quotedVersionColumn} WHERE 0";

    /// <inheritdoc/>
    /// <remarks>Binds <see cref="SqliteSharedStore"/> to the transaction (see <see cref="SqliteSharedStore.EnlistTransaction"/>).</remarks>
    public IDisposable? EnlistStore(DbConnection connection, DbTransaction transaction) =>
        connection is SqliteConnection sqlite && transaction is SqliteTransaction sqliteTransaction
            ? SqliteSharedStore.EnlistTransaction(sqlite, sqliteTransaction)
            : null;

    /// <inheritdoc/>
    public override bool IsStaleSnapshot(DbException exception) =>
        exception is SqliteException { SqliteExtendedErrorCode: SqliteBusySnapshot };

    /// <inheritdoc/>
    /// <remarks>SQLITE_BUSY (5) or SQLITE_LOCKED (6) once Microsoft.Data.Sqlite's busy retries (for the command timeout) ran out.</remarks>
    public override bool IsWaitTimeout(DbException exception) =>
        exception is SqliteException { SqliteErrorCode: 5 or 6, SqliteExtendedErrorCode: not SqliteBusySnapshot };

    /// <inheritdoc/>
    /// <remarks>SQLITE_ERROR (1) with SQLite's "no such column" message: SQLite has no error code of its own for it.</remarks>
    public override bool IsUndefinedColumn(DbException exception) =>
        exception is SqliteException { SqliteErrorCode: 1 } e && e.Message.Contains("no such column", StringComparison.Ordinal);

    /// <inheritdoc/>
    /// <remarks>
    /// Microsoft.Data.Sqlite retries a busy statement until its command timeout (whole seconds) runs out: that is the
    /// busy timeout here, so it is the wait timeout rounded up, not a backstop behind it.
    /// </remarks>
    public override int CommandTimeoutSeconds(TimeSpan waitTimeout) => (int)Math.Min(int.MaxValue, Math.Max(1, Math.Ceiling(waitTimeout.TotalSeconds)));

    /// <inheritdoc/>
    /// <remarks><c>BEGIN IMMEDIATE</c> waits with the connection's default timeout, set to the wait timeout for it and then given back.</remarks>
    public override DbTransaction BeginTransaction(DbConnection connection, IsolationLevel isolationLevel, TimeSpan waitTimeout)
    {
        if (connection is not SqliteConnection sqlite)
        {
            return base.BeginTransaction(connection, isolationLevel, waitTimeout);
        }

        int saved = sqlite.DefaultTimeout;
        sqlite.DefaultTimeout = CommandTimeoutSeconds(waitTimeout);
        try
        {
            return sqlite.BeginTransaction(isolationLevel);
        }
        finally
        {
            sqlite.DefaultTimeout = saved;
        }
    }

    /// <inheritdoc/>
    public override ValueTask<DbTransaction> BeginTransactionAsync(
        DbConnection connection, IsolationLevel isolationLevel, TimeSpan waitTimeout, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<DbTransaction>(BeginTransaction(connection, isolationLevel, waitTimeout));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A private in-memory database (<c>:memory:</c>, <c>Mode=Memory</c> without a shared cache) exists on its own
    /// connection only: <see langword="null"/> then, and the checks stay on the application's connection.
    /// </remarks>
    public override DbConnection? CreateCheckConnection(DbConnection connection, string? connectionString)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var builder = new SqliteConnectionStringBuilder(string.IsNullOrEmpty(connectionString) ? connection.ConnectionString : connectionString);
        bool inMemory = builder.DataSource is "" or ":memory:" || builder.Mode == SqliteOpenMode.Memory;
        return inMemory && builder.Cache != SqliteCacheMode.Shared ? null : new SqliteConnection(builder.ToString());
    }
}
