namespace SharedEntities.Stores;

/// <summary>
/// A store in this process's memory: for tests, and for an application whose only sharing is between threads.
/// Several <see cref="Coherence"/> instances may share one, which is how the tests play several processes. Safe for
/// concurrent use; every batch runs under one lock, so each operation is atomic.
/// </summary>
public sealed class InMemorySharedStore : ISharedStore, IStoredItems
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
                batch.SetResult(i, StoreSemantics.Apply(this, batch.Operations[i]));
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

    bool IStoredItems.TryGet(string key, out StoredItem item)
    {
        bool found = TryGet(key, out Item stored);
        item = new StoredItem(stored.Value, stored.Cas, stored.IsPlaceholder);
        return found;
    }

    StoredItem IStoredItems.Put(string key, long value, TimeSpan ttl, bool isPlaceholder)
    {
        Item item = Put(key, value, ttl, isPlaceholder);
        return new StoredItem(item.Value, item.Cas, item.IsPlaceholder);
    }

    StoredItem IStoredItems.Increment(string key, StoredItem current)
    {
        Item item = _items[key] with { Value = unchecked(current.Value + 1), Cas = ++_nextCas };
        _items[key] = item;
        return new StoredItem(item.Value, item.Cas, IsPlaceholder: false);
    }

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
