namespace SharedEntities.Stores;

/// <summary>
/// A list of operations sent to an <see cref="ISharedStore"/> together: a store sends them in one round trip per
/// server where it can (memcached pipelines them). Results come back in the same order.
/// </summary>
public sealed class StoreBatch
{
    private readonly List<StoreOperation> _operations = [];
    private readonly List<StoreResult> _results = [];

    /// <summary>The number of operations.</summary>
    public int Count => _operations.Count;

    /// <summary>The operations, in order.</summary>
    public IReadOnlyList<StoreOperation> Operations => _operations;

    /// <summary>The result of operation <paramref name="index"/> (<see cref="StoreStatus.Pending"/> until executed).</summary>
    public StoreResult this[int index] => _results[index];

    /// <summary>Adds an operation; returns its index.</summary>
    public int Add(in StoreOperation operation)
    {
        ArgumentException.ThrowIfNullOrEmpty(operation.Key);
        if (operation.Lease && operation.Ttl <= TimeSpan.Zero)
        {
            throw new ArgumentException($"A read that takes a lease needs a positive TTL for its placeholder (key '{operation.Key}').", nameof(operation));
        }

        _operations.Add(operation);
        _results.Add(default);
        return _operations.Count - 1;
    }

    /// <summary>Adds a read; with <paramref name="leaseTtl"/> above zero a miss takes a lease.</summary>
    public int AddRead(string key, TimeSpan leaseTtl = default) =>
        Add(new StoreOperation(StoreOperationKind.Read, key, Ttl: leaseTtl, Lease: leaseTtl > TimeSpan.Zero));

    /// <summary>Records the result of operation <paramref name="index"/>. For stores.</summary>
    public void SetResult(int index, StoreResult result) => _results[index] = result;

    /// <summary>Marks every operation not yet answered with <paramref name="status"/>. For stores.</summary>
    public void FailPending(StoreStatus status, Exception? error)
    {
        for (int i = 0; i < _results.Count; i++)
        {
            if (_results[i].Status == StoreStatus.Pending)
            {
                _results[i] = new StoreResult(status, Error: error);
            }
        }
    }

    /// <summary>Empties the batch for reuse.</summary>
    public void Clear()
    {
        _operations.Clear();
        _results.Clear();
    }
}
