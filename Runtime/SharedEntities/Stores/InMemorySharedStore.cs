using SharedEntities.Protocol;

namespace SharedEntities.Stores;

/// <summary>
/// A store in this process's memory: for tests, and for an application whose only sharing is between threads.
/// Several <see cref="Coherence"/> instances may share one, which is how the tests play several processes. Safe for
/// concurrent use; every batch runs under one lock, so each operation is atomic.
/// </summary>
public sealed class InMemorySharedStore : ISharedStore
{
    private readonly Dictionary<string, Item> _items = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private ulong _nextCas;
    private long _batchCount;

    /// <summary>Creates an empty store.</summary>
    /// <param name="timeProvider">The clock for TTLs (tests pass a fake one).</param>
    public InMemorySharedStore(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <summary>When <see langword="false"/>, every operation answers <see cref="StoreStatus.Unavailable"/>, as a dead server would.</summary>
    public bool IsAvailable { get; set; } = true;

    /// <summary>The number of batches executed (one per round trip a networked store would make).</summary>
    public long BatchCount => Interlocked.Read(ref _batchCount);

    /// <summary>The number of live items (values and placeholders).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                RemoveExpired();
                return _items.Count;
            }
        }
    }

    /// <summary>Drops one item, as an eviction would.</summary>
    public bool Evict(string key)
    {
        lock (_gate)
        {
            return _items.Remove(key);
        }
    }

    /// <summary>Drops every item, as a server restart would.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _items.Clear();
        }
    }

    /// <summary>The raw value stored for <paramref name="key"/>, if any (placeholders excluded). For tests and tools.</summary>
    public long? Peek(string key)
    {
        lock (_gate)
        {
            return TryGet(key, out Item item) && !item.IsPlaceholder ? item.Value : null;
        }
    }

    /// <inheritdoc/>
    public void Execute(StoreBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Interlocked.Increment(ref _batchCount);
        if (!IsAvailable)
        {
            batch.FailPending(StoreStatus.Unavailable, new SharedStoreUnavailableException("The in-memory store is marked unavailable."));
            return;
        }

        lock (_gate)
        {
            for (int i = 0; i < batch.Count; i++)
            {
                batch.SetResult(i, Apply(batch.Operations[i]));
            }
        }
    }

    /// <inheritdoc/>
    public ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Execute(batch);
        return ValueTask.CompletedTask;
    }

    private StoreResult Apply(in StoreOperation op)
    {
        bool exists = TryGet(op.Key, out Item item);
        switch (op.Kind)
        {
            case StoreOperationKind.Read:
                if (exists && !item.IsPlaceholder)
                {
                    return new StoreResult(StoreStatus.Hit, item.Value, item.Cas);
                }

                if (!op.Lease)
                {
                    return new StoreResult(StoreStatus.Miss);
                }

                if (exists)
                {
                    return new StoreResult(StoreStatus.LeaseLost, Cas: item.Cas);
                }

                Item placeholder = Put(op.Key, 0, op.Ttl, isPlaceholder: true);
                return new StoreResult(StoreStatus.LeaseWon, Cas: placeholder.Cas);

            case StoreOperationKind.Raise:
                if (exists && !item.IsPlaceholder && item.Value >= op.Value)
                {
                    return new StoreResult(StoreStatus.NotStored, item.Value, item.Cas);
                }

                return Stored(Put(op.Key, op.Value, op.Ttl));

            case StoreOperationKind.Publish:
                if (exists && !item.IsPlaceholder && item.Value == op.Expected)
                {
                    return Stored(Put(op.Key, op.Value, op.Ttl));
                }

                return exists && !item.IsPlaceholder
                    ? new StoreResult(StoreStatus.NotStored, item.Value, item.Cas)
                    : new StoreResult(StoreStatus.NotStored);

            case StoreOperationKind.Fill:
                if (exists && item.IsPlaceholder && item.Cas == op.Cas)
                {
                    return Stored(Put(op.Key, op.Value, op.Ttl));
                }

                return new StoreResult(StoreStatus.NotStored, exists && !item.IsPlaceholder ? item.Value : 0);

            case StoreOperationKind.Increment:
                if (!exists || item.IsPlaceholder)
                {
                    return new StoreResult(StoreStatus.Miss);
                }

                if (new SharedToken(item.Value).IsTombstone)
                {
                    return new StoreResult(StoreStatus.NotStored, item.Value, item.Cas);
                }

                // Keeps the item's expiry, as memcached's arithmetic does.
                item = item with { Value = unchecked(item.Value + 1), Cas = ++_nextCas };
                _items[op.Key] = item;
                return Stored(item);

            case StoreOperationKind.AddIfAbsent:
                return exists
                    ? new StoreResult(StoreStatus.NotStored, item.IsPlaceholder ? 0 : item.Value, item.Cas)
                    : Stored(Put(op.Key, op.Value, op.Ttl));

            default:
                throw new ArgumentOutOfRangeException(nameof(op), op.Kind, "Unknown store operation.");
        }
    }

    private static StoreResult Stored(Item item) => new(StoreStatus.Stored, item.Value, item.Cas);

    private bool TryGet(string key, out Item item)
    {
        if (_items.TryGetValue(key, out item))
        {
            if (item.ExpiresAt is { } expires && expires <= _time.GetUtcNow())
            {
                _items.Remove(key);
                item = default;
                return false;
            }

            return true;
        }

        return false;
    }

    private Item Put(string key, long value, TimeSpan ttl, bool isPlaceholder = false)
    {
        DateTimeOffset? expires = ttl > TimeSpan.Zero ? _time.GetUtcNow() + ttl : null;
        var item = new Item(value, ++_nextCas, expires, isPlaceholder);
        _items[key] = item;
        return item;
    }

    private void RemoveExpired()
    {
        DateTimeOffset now = _time.GetUtcNow();
        foreach (KeyValuePair<string, Item> pair in _items)
        {
            if (pair.Value.ExpiresAt is { } expires && expires <= now)
            {
                _items.Remove(pair.Key);
            }
        }
    }

    private readonly record struct Item(long Value, ulong Cas, DateTimeOffset? ExpiresAt, bool IsPlaceholder);
}
