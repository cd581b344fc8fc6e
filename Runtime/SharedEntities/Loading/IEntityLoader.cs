namespace SharedEntities.Loading;

/// <summary>
/// The database side of the protocol: what the runtime asks of EF Core, ADO.NET or a test double. Every method works
/// on a batch so that a scope costs one query, not one per entity. Reads must see the newest committed row: a loader
/// that runs inside a transaction whose snapshot is older returns old versions, and the runtime then throws
/// <see cref="StaleSnapshotException"/> rather than accept them.
/// </summary>
/// <remarks>
/// The synchronous methods serve property getters, which cannot await; the asynchronous ones serve
/// <see cref="FreshScope.CheckAsync(CancellationToken)"/> and commits.
/// </remarks>
public interface IEntityLoader
{
    /// <summary>
    /// Loads the current row of each entity into it in place: shared values through
    /// <see cref="ISharedEntity.SetSharedValue"/> and, for versioned entities, the version.
    /// Sets <paramref name="found"/>[i] to <see langword="false"/> where the row no longer exists.
    /// </summary>
    void Reload(IReadOnlyList<ISharedEntity> entities, bool[] found);

    /// <inheritdoc cref="Reload"/>
    ValueTask ReloadAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, CancellationToken cancellationToken);

    /// <summary>Reads the committed version of each (versioned) entity's row; <see langword="null"/> where the row is gone.</summary>
    void ReadVersions(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions);

    /// <inheritdoc cref="ReadVersions"/>
    ValueTask ReadVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions, CancellationToken cancellationToken);

    /// <summary>
    /// Reads the versions with a lock that keeps writers of those rows out (<c>SELECT … FOR SHARE</c>, or SQLite's write
    /// transaction) until the returned lock is disposed. The runtime fills store leases while it holds the lock, so a
    /// filler can never publish a version that a concurrent commit is about to replace. Inside a transaction whose
    /// snapshot is older than the newest commit, it must throw <see cref="StaleSnapshotException"/> (PostgreSQL and
    /// SQLite refuse such a locking read) rather than return an old version.
    /// </summary>
    IVersionLock LockVersions(IReadOnlyList<IVersionedSharedEntity> entities);

    /// <inheritdoc cref="LockVersions"/>
    ValueTask<IVersionLock> LockVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the loader's reads run inside a transaction of the application's. Outside one, a read sees the newest
    /// committed row, so a version older than the store's token means the store (or this process's copy) is ahead of
    /// the database, which then wins; inside one, it may only mean that the transaction's snapshot is old, and the
    /// runtime refuses it with <see cref="StaleSnapshotException"/>.
    /// </summary>
    bool ReadsInTransaction { get; }

    /// <summary>Begins a database transaction for a commit.</summary>
    ValueTask<IEntityWriteTransaction> BeginWriteAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Begins a database transaction for a repair that a check runs (<see cref="IEntityWriteTransaction.AdvanceVersionAsync"/>
    /// of <paramref name="entities"/>, after the store was found ahead of the database). Like
    /// <see cref="BeginWriteAsync"/>, but a wait to begin it (SQLite's write lock) lasts at most
    /// <see cref="CoherenceOptions.DatabaseWaitTimeout"/>, then throws <see cref="DatabaseWaitTimeoutException"/>:
    /// a check must not hang on another session's lock. By default, <see cref="BeginWriteAsync"/>.
    /// </summary>
    ValueTask<IEntityWriteTransaction> BeginRepairAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken) =>
        BeginWriteAsync(cancellationToken);
}

/// <summary>Versions read under a lock (see <see cref="IEntityLoader.LockVersions"/>). Disposing releases the lock.</summary>
public interface IVersionLock : IAsyncDisposable, IDisposable
{
    /// <summary>The committed versions, in the order asked for; <see langword="null"/> where the row is gone.</summary>
    IReadOnlyList<long?> Versions { get; }
}

/// <summary>
/// A database transaction that writes shared entities. Disposing it without <see cref="CommitAsync"/> rolls it back.
/// </summary>
public interface IEntityWriteTransaction : IAsyncDisposable
{
    /// <summary>
    /// Writes the entity's row. For a versioned entity: <c>UPDATE … SET …, version = @new WHERE key = @k AND version = @expected</c>;
    /// returns <see langword="false"/> when no row matched (another process committed first, or the row is gone).
    /// For a serial-only entity both versions are <see langword="null"/> and the update is unconditional.
    /// </summary>
    ValueTask<bool> UpdateAsync(ISharedEntity entity, long? expectedVersion, long? newVersion, CancellationToken cancellationToken);

    /// <summary>Deletes the entity's row, guarded by <paramref name="expectedVersion"/> when it is given; <see langword="false"/> when no row matched.</summary>
    ValueTask<bool> DeleteAsync(ISharedEntity entity, long? expectedVersion, CancellationToken cancellationToken);

    /// <summary>
    /// Moves a versioned row from <paramref name="expectedVersion"/> to <paramref name="newVersion"/> and writes nothing
    /// else: <c>UPDATE … SET version = @new WHERE key = @k AND version = @expected</c>. The runtime uses it when it finds
    /// the store ahead of the database, so that the database's row gets a version no process can hold an older copy
    /// of. Returns <see langword="false"/> when no row matched.
    /// </summary>
    ValueTask<bool> AdvanceVersionAsync(IVersionedSharedEntity entity, long expectedVersion, long newVersion, CancellationToken cancellationToken);

    /// <summary>Commits.</summary>
    ValueTask CommitAsync(CancellationToken cancellationToken);
}
