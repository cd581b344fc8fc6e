using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using SharedEntities.Loading;
using SharedEntities.Protocol;
using static SharedEntities.InMemory.InMemoryEntityDatabase;

namespace SharedEntities.InMemory;

/// <summary>
/// One process's connection to an <see cref="InMemoryEntityDatabase"/>: finds entities (attaching them to the
/// process's <see cref="Coherence"/>) and serves as their <see cref="IEntityLoader"/>.
/// </summary>
internal sealed class InMemoryEntityConnection : IEntityLoader
{
    private readonly InMemoryEntityDatabase _database;
    private IReadOnlyDictionary<RowKey, Row>? _snapshot;
    private int _queries;

    internal InMemoryEntityConnection(InMemoryEntityDatabase database, Coherence coherence)
    {
        _database = database;
        Coherence = coherence;
    }

    /// <summary>The runtime entities found here are attached to.</summary>
    public Coherence Coherence { get; }

    /// <summary>The number of database round trips made so far (a batch counts once).</summary>
    public int Queries => Volatile.Read(ref _queries);

    /// <summary>Whether a REPEATABLE READ transaction is open on this connection.</summary>
    public bool InRepeatableRead => _snapshot is not null;

    /// <inheritdoc/>
    public bool ReadsInTransaction => InRepeatableRead;

    /// <summary>
    /// Loads the row with key <paramref name="key"/> into a new <typeparamref name="T"/> attached to the runtime, or
    /// returns <see langword="null"/> if there is none. Inside a scope, the scope tracks the entity.
    /// </summary>
    public T? Find<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] T>(object key)
        where T : class, ISharedEntity, new()
    {
        ArgumentNullException.ThrowIfNull(key);
        var entity = new T();
        var keyProperty = typeof(T).GetProperty(entity.SharedType.KeyProperty)
            ?? throw new InvalidOperationException($"{typeof(T)} has no public key property {entity.SharedType.KeyProperty}.");
        keyProperty.SetValue(entity, Convert.ChangeType(key, keyProperty.PropertyType, CultureInfo.InvariantCulture));
        Interlocked.Increment(ref _queries);
        if (ReadRow(RowKey.Of(entity)) is not { } row)
        {
            return null;
        }

        Load(entity, row);
        return Coherence.Attach(entity, this);
    }

    /// <summary>
    /// Begins a REPEATABLE READ transaction: until it is disposed, this connection reads the rows as they were now,
    /// whatever other processes commit (as PostgreSQL, MySQL InnoDB and SQLite WAL readers do).
    /// </summary>
    public IDisposable BeginRepeatableRead()
    {
        if (_snapshot is not null)
        {
            throw new InvalidOperationException("A REPEATABLE READ transaction is already open on this connection.");
        }

        _snapshot = _database.Snapshot();
        return new SnapshotEnd(this);
    }

    /// <inheritdoc/>
    public void Reload(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        Interlocked.Increment(ref _queries);
        for (int i = 0; i < entities.Count; i++)
        {
            Row? row = ReadRow(RowKey.Of(entities[i]));
            found[i] = row is not null;
            if (row is not null)
            {
                Load(entities[i], row);
            }
        }
    }

    /// <inheritdoc/>
    public ValueTask ReloadAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Reload(entities, found);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public void ReadVersions(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions)
    {
        Interlocked.Increment(ref _queries);
        for (int i = 0; i < entities.Count; i++)
        {
            versions[i] = ReadRow(RowKey.Of(entities[i]))?.Version;
        }
    }

    /// <inheritdoc/>
    public ValueTask ReadVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ReadVersions(entities, versions);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public IVersionLock LockVersions(IReadOnlyList<IVersionedSharedEntity> entities)
    {
        _database.RowLock.Wait();
        return LockedVersions(entities);
    }

    /// <inheritdoc/>
    public async ValueTask<IVersionLock> LockVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken)
    {
        await _database.RowLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        return LockedVersions(entities);
    }

    /// <inheritdoc/>
    public async ValueTask<IEntityWriteTransaction> BeginWriteAsync(CancellationToken cancellationToken)
    {
        await _database.RowLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new WriteTransaction(this);
    }

    private static void Load(ISharedEntity entity, Row row)
    {
        for (int i = 0; i < row.Values.Length; i++)
        {
            entity.SetSharedValue(i, row.Values[i]);
        }

        if (entity is IVersionedSharedEntity versioned)
        {
            versioned.SharedVersion = row.Version;
        }
    }

    private Row? ReadRow(RowKey key) => _snapshot is { } snapshot ? snapshot.GetValueOrDefault(key) : _database.Read(key);

    private VersionLock LockedVersions(IReadOnlyList<IVersionedSharedEntity> entities)
    {
        try
        {
            Interlocked.Increment(ref _queries);
            var versions = new long?[entities.Count];
            for (int i = 0; i < entities.Count; i++)
            {
                var key = RowKey.Of(entities[i]);
                long? current = _database.Read(key)?.Version;
                long? seen = ReadRow(key)?.Version;

                // A locking read in an old snapshot fails in real databases (PostgreSQL: "could not serialize access
                // due to concurrent update"; SQLite: SQLITE_BUSY_SNAPSHOT) rather than return the old version.
                if (current != seen)
                {
                    throw new StaleSnapshotException(entities[i].SharedType.Name, entities[i].SharedKey, current ?? -1, seen ?? -1);
                }

                versions[i] = current;
            }

            return new VersionLock(_database.RowLock, versions);
        }
        catch
        {
            _database.RowLock.Release();
            throw;
        }
    }

    private sealed class SnapshotEnd(InMemoryEntityConnection connection) : IDisposable
    {
        public void Dispose() => connection._snapshot = null;
    }

    private sealed class VersionLock(SemaphoreSlim rowLock, long?[] versions) : IVersionLock
    {
        private int _released;

        public IReadOnlyList<long?> Versions => versions;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                rowLock.Release();
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class WriteTransaction(InMemoryEntityConnection connection) : IEntityWriteTransaction
    {
        private readonly Dictionary<RowKey, Row?> _writes = [];
        private bool _ended;

        public ValueTask<bool> UpdateAsync(ISharedEntity entity, long? expectedVersion, long? newVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            cancellationToken.ThrowIfCancellationRequested();
            var key = RowKey.Of(entity);
            if (!Matches(key, expectedVersion, out Row? current))
            {
                return ValueTask.FromResult(false);
            }

            _writes[key] = Row.From(entity, newVersion ?? current.Version);
            return ValueTask.FromResult(true);
        }

        public ValueTask<bool> AdvanceVersionAsync(IVersionedSharedEntity entity, long expectedVersion, long newVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            cancellationToken.ThrowIfCancellationRequested();
            var key = RowKey.Of(entity);
            if (!Matches(key, expectedVersion, out Row? current))
            {
                return ValueTask.FromResult(false);
            }

            _writes[key] = current with { Version = newVersion };
            return ValueTask.FromResult(true);
        }

        public ValueTask<bool> DeleteAsync(ISharedEntity entity, long? expectedVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            cancellationToken.ThrowIfCancellationRequested();
            var key = RowKey.Of(entity);
            if (!Matches(key, expectedVersion, out _))
            {
                return ValueTask.FromResult(false);
            }

            _writes[key] = null;
            return ValueTask.FromResult(true);
        }

        public ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_ended, this);
            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Increment(ref connection._queries);
            connection._database.Apply(_writes);
            End();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            End();
            return ValueTask.CompletedTask;
        }

        // The guard reads the newest row (a writer's UPDATE sees the latest committed version even in REPEATABLE READ,
        // where the database would raise a serialization failure instead of matching an old version).
        private bool Matches(RowKey key, long? expectedVersion, [NotNullWhen(true)] out Row? current)
        {
            ObjectDisposedException.ThrowIf(_ended, this);
            Interlocked.Increment(ref connection._queries);
            current = _writes.TryGetValue(key, out Row? staged) ? staged : connection._database.Read(key);
            return current is not null && (expectedVersion is null || current.Version == expectedVersion);
        }

        private void End()
        {
            if (!_ended)
            {
                _ended = true;
                connection._database.RowLock.Release();
            }
        }
    }
}
