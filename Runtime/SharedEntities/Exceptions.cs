namespace SharedEntities;

/// <summary>The base of every exception the protocol throws on purpose.</summary>
public abstract class SharedEntityException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected SharedEntityException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A commit (or a read after a local write) found that another process committed a newer version of the entity than
/// the one this copy was read at. Nothing was written: the update would have been lost. Retry the work in a new scope.
/// </summary>
public sealed class StaleEntityException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public StaleEntityException(string entityName, object key, long? localVersion, string detail, Exception? innerException = null)
        : base(
            $"{entityName} {key} was changed by another process since this copy was read{(localVersion is { } v ? $" (at version {v})" : "")}; {detail} " +
            "Nothing was written. Retry the work in a new scope, which reloads the entity.",
            innerException)
    {
        EntityName = entityName;
        Key = key;
        LocalVersion = localVersion;
    }

    /// <summary>The entity's name.</summary>
    public string EntityName { get; }

    /// <summary>The entity's key.</summary>
    public object Key { get; }

    /// <summary>The version the local copy was read at, for a versioned entity.</summary>
    public long? LocalVersion { get; }
}

/// <summary>A check or a write found that another process deleted the entity: this copy no longer has a row.</summary>
public sealed class EntityDeletedException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public EntityDeletedException(string entityName, object key)
        : base($"{entityName} {key} has been deleted by another process. Stop using this copy; load the entity again if it may have been re-created.")
    {
        EntityName = entityName;
        Key = key;
    }

    /// <summary>The entity's name.</summary>
    public string EntityName { get; }

    /// <summary>The entity's key.</summary>
    public object Key { get; }
}

/// <summary>
/// Inside an application transaction, a read returned an older version than one known to exist: the transaction
/// took its snapshot before that commit (REPEATABLE READ, SERIALIZABLE or SNAPSHOT isolation), or the
/// store is ahead of the database (a restore from a backup, a failover). Returning the old row would be a silent stale
/// read, so the runtime refuses. Outside a transaction it can tell the two apart: the database then wins and the store
/// is repaired.
/// </summary>
public sealed class StaleSnapshotException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public StaleSnapshotException(string entityName, object key, long expectedVersion, long loadedVersion)
        : base(
            $"Reading {entityName} {key} inside a transaction returned version {loadedVersion}, but version {expectedVersion} is known to exist: " +
            "the transaction's snapshot predates that commit (REPEATABLE READ, SERIALIZABLE or SNAPSHOT), so it cannot see fresh data — or, " +
            "less often, the shared store is ahead of the database (a restore from a backup, a failover). Commit or roll back the transaction " +
            "before the scope checks the entity, or begin the scope outside the transaction; there the runtime tells the two apart.")
    {
        EntityName = entityName;
        Key = key;
        ExpectedVersion = expectedVersion;
        LoadedVersion = loadedVersion;
    }

    /// <summary>The entity's name.</summary>
    public string EntityName { get; }

    /// <summary>The entity's key.</summary>
    public object Key { get; }

    /// <summary>The version known to be committed.</summary>
    public long ExpectedVersion { get; }

    /// <summary>The version the reload returned.</summary>
    public long LoadedVersion { get; }
}

/// <summary>A shared property was read outside a <see cref="FreshScope"/> while <see cref="CoherenceOptions.OutsideScopeReads"/> is <see cref="OutsideScopeReads.Throw"/>.</summary>
public sealed class ReadOutsideScopeException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public ReadOutsideScopeException(string entityName, object key)
        : base(
            $"A shared property of {entityName} {key} was read outside a fresh scope, so its value could be stale. " +
            "Read it inside 'using var scope = coherence.BeginScope();' (or coherence.RunInScopeAsync), mark the method [RequiresFreshScope], " +
            "or set CoherenceOptions.OutsideScopeReads to CheckEveryRead.")
    {
        EntityName = entityName;
        Key = key;
    }

    /// <summary>The entity's name.</summary>
    public string EntityName { get; }

    /// <summary>The entity's key.</summary>
    public object Key { get; }
}

/// <summary>
/// The shared store could not be reached for a write. The database transaction was rolled back, because committing
/// without raising the entity's token first could let other processes accept the old version.
/// </summary>
public sealed class SharedStoreUnavailableException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public SharedStoreUnavailableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>A database wait of a check (see <see cref="DatabaseWaitTimeoutException"/>).</summary>
public enum DatabaseWait
{
    /// <summary>The lease winner's locking version read (<c>FOR SHARE</c>, SQLite's write lock), which waits for writers.</summary>
    LockedVersionRead,

    /// <summary>A plain read of the rows' versions.</summary>
    VersionRead,

    /// <summary>A read of the rows (a reload).</summary>
    RowRead,

    /// <summary>The repair that moves a row's version past a store found ahead of the database.</summary>
    VersionAdvance,
}

/// <summary>
/// A database wait that the runtime started for a check lasted longer than
/// <see cref="CoherenceOptions.DatabaseWaitTimeout"/>: another session holds a lock on the rows (or on the SQLite file),
/// or the database does not answer. The statement was cancelled; nothing was written.
/// </summary>
public sealed class DatabaseWaitTimeoutException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    public DatabaseWaitTimeoutException(string entityName, DatabaseWait wait, TimeSpan timeout, Exception? innerException = null)
        : base(
            $"{Describe(wait)} of {entityName} waited longer than CoherenceOptions.DatabaseWaitTimeout ({(long)timeout.TotalMilliseconds} ms): another session " +
            "holds a lock on its rows (or on the database file), or the database does not answer. Nothing was written. Find the long-running " +
            "transaction that holds the lock, or raise DatabaseWaitTimeout." +
            (wait == DatabaseWait.LockedVersionRead
                ? " (Inside an application transaction the check cannot fall back to a plain read: on PostgreSQL the transaction is aborted; roll it back.)"
                : ""),
            innerException)
    {
        EntityName = entityName;
        Wait = wait;
        Timeout = timeout;
    }

    /// <summary>The entity's name.</summary>
    public string EntityName { get; }

    /// <summary>Which wait timed out.</summary>
    public DatabaseWait Wait { get; }

    /// <summary>The timeout (<see cref="CoherenceOptions.DatabaseWaitTimeout"/>).</summary>
    public TimeSpan Timeout { get; }

    private static string Describe(DatabaseWait wait) => wait switch
    {
        DatabaseWait.LockedVersionRead => "The lease fill's locking version read",
        DatabaseWait.VersionRead => "A version read",
        DatabaseWait.RowRead => "A row read (reload)",
        DatabaseWait.VersionAdvance => "A repair's version advance",
        _ => "A database wait",
    };
}

/// <summary>
/// A statement of the runtime named a column that the entity's table does not have: most often a version column that
/// the class declares and no migration added yet. The message names the columns the runtime reads and the migration to
/// add. Nothing was written.
/// </summary>
public sealed class MissingColumnException : SharedEntityException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="entityName">The entity's name.</param>
    /// <param name="table">Its table.</param>
    /// <param name="columns">The columns the runtime reads: the key, the version (if any) and the shared columns.</param>
    /// <param name="versionProperty">The version property, or <see langword="null"/> for a serial-only entity.</param>
    /// <param name="versionColumn">Its column.</param>
    /// <param name="innerException">The database's error, which names the column.</param>
    public MissingColumnException(
        string entityName, string table, IReadOnlyList<string> columns, string? versionProperty, string? versionColumn, Exception innerException)
        : base(
            $"The table {table} lacks a column that SharedEntities reads for {entityName} ({innerException?.Message.TrimEnd('.')}). It reads " +
            $"{string.Join(", ", columns ?? [])}." +
            (versionProperty is null
                ? " Map each shared property to an existing column, or add the missing one with a migration."
                : $" If the version column {versionColumn} is the one missing, the table predates it: add it with a migration (EF Core: " +
                  $"dotnet ef migrations add Add{entityName}{versionProperty}, then dotnet ef database update; in SQL: ALTER TABLE {table} ADD " +
                  $"{versionColumn} bigint NOT NULL DEFAULT 1), or remove the property {versionProperty} from the class to keep {entityName} " +
                  "serial-only (no version column, weaker guarantees: docs/protocol.md)."),
            innerException)
    {
        EntityName = entityName;
        Table = table;
    }

    /// <summary>The entity's name.</summary>
    public string EntityName { get; }

    /// <summary>The table.</summary>
    public string Table { get; }
}
