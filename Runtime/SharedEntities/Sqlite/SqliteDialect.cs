using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using SharedEntities.AdoNet;

namespace SharedEntities.Sqlite;

/// <summary>
/// SQLite for <see cref="DbEntityLoader"/>: the loader's own transactions are <c>BEGIN IMMEDIATE</c> (the write lock,
/// which keeps every other writer of the file out until it ends); inside an application transaction a no-op
/// <c>UPDATE … WHERE 0</c> takes the write lock, and SQLite refuses it with <c>SQLITE_BUSY_SNAPSHOT</c> when the
/// transaction's snapshot is older than the newest commit (WAL mode).
/// </summary>
public sealed class SqliteDialect : DbDialect
{
    private const int SqliteBusySnapshot = 517; // SQLITE_BUSY | (2 << 8)

    private SqliteDialect()
    {
    }

    /// <summary>The instance.</summary>
    public static SqliteDialect Instance { get; } = new();

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
    public override bool RunsSynchronously => true;

    /// <inheritdoc/>
    public override IDisposable? EnlistStore(DbConnection connection, DbTransaction transaction) =>
        connection is SqliteConnection sqlite && transaction is SqliteTransaction sqliteTransaction
            ? SqliteSharedStore.EnlistTransaction(sqlite, sqliteTransaction)
            : null;

    /// <inheritdoc/>
    public override bool IsStaleSnapshot(DbException exception) =>
        exception is SqliteException { SqliteExtendedErrorCode: SqliteBusySnapshot };
}
