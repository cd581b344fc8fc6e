using System.Buffers;
using SharedEntities.Stores;

namespace SharedEntities.Memcached;

/// <summary>
/// The part of a <see cref="StoreBatch"/> that goes to one server, run in rounds: each round sends the next command
/// of every unfinished operation in one pipelined exchange. Operations on a key that already occurs earlier in the
/// part wait for a later segment, so that the batch's order of effects on one key is kept. (A part of reads only
/// needs no segments: each read is one command, and the server answers a pipeline in order.)
/// </summary>
internal sealed class NodeBatch : IDisposable, IExchangeParty
{
    private readonly MemcachedNode _node;
    private readonly int _maxAttempts;
    private MemcachedOperation[] _operations;
    private MetaRequest[] _requests;
    private MetaReply[] _replies;
    private int[] _inFlight;
    private int _inFlightCount;
    private bool _onlyReads = true;

    public NodeBatch(MemcachedNode node, int capacity, int maxAttempts)
    {
        _node = node;
        _maxAttempts = maxAttempts;
        _operations = ArrayPool<MemcachedOperation>.Shared.Rent(capacity);
        _requests = ArrayPool<MetaRequest>.Shared.Rent(capacity);
        _replies = ArrayPool<MetaReply>.Shared.Rent(capacity);
        _inFlight = ArrayPool<int>.Shared.Rent(capacity);
    }

    public int Count { get; private set; }

    public MemcachedNode Node => _node;

    public void Add(int index, in StoreOperation operation, uint ttlSeconds)
    {
        _operations[Count++] = new MemcachedOperation(index, operation, ttlSeconds);
        _onlyReads &= operation.Kind == StoreOperationKind.Read;
    }

    public async ValueTask RunAsync(bool async, CancellationToken cancellationToken)
    {
        int start = 0;
        HashSet<string>? keys = null;
        while (start < Count)
        {
            int end = Count;
            if (Count - start > 1 && !_onlyReads)
            {
                keys ??= new HashSet<string>(StringComparer.Ordinal);
                keys.Clear();
                end = start;
                while (end < Count && keys.Add(_operations[end].Operation.Key))
                {
                    end++;
                }
            }

            MemcachedUnavailableException? unavailable = await RunSegmentAsync(start, end, async, cancellationToken).ConfigureAwait(false);
            if (unavailable is not null)
            {
                // The server is unreachable: the rest would only wait for the same timeout or fail the same way.
                for (int i = end; i < Count; i++)
                {
                    _operations[i].Fail(StoreStatus.Unavailable, unavailable);
                }

                return;
            }

            start = end;
        }
    }

    /// <summary>Writes the results into the batch (on the caller's thread: a batch is not thread-safe).</summary>
    public void CopyResultsTo(StoreBatch batch)
    {
        for (int i = 0; i < Count; i++)
        {
            batch.SetResult(_operations[i].Index, _operations[i].Result);
        }
    }

    public ReadOnlySpan<MemcachedOperation> Operations => _operations.AsSpan(0, Count);

    public void Dispose()
    {
        // Only the used part holds references (keys, errors); clearing it alone keeps big arrays cheap to recycle.
        Array.Clear(_operations, 0, Count);
        Array.Clear(_requests, 0, Math.Min(Count, _requests.Length));
        ArrayPool<MemcachedOperation>.Shared.Return(_operations);
        ArrayPool<MetaRequest>.Shared.Return(_requests);
        ArrayPool<MetaReply>.Shared.Return(_replies);
        ArrayPool<int>.Shared.Return(_inFlight);
        _operations = [];
        _requests = [];
        _replies = [];
        _inFlight = [];
    }

    void IExchangeParty.BeforeSend(CasHints hints)
    {
        for (int k = 0; k < _inFlightCount; k++)
        {
            ref MemcachedOperation operation = ref _operations[_inFlight[k]];
            if (operation.TryUseHint(hints))
            {
                _requests[k] = operation.NextRequest();
            }
        }
    }

    void IExchangeParty.OnReplies(int from, int to, CasHints hints)
    {
        for (int k = from; k < to; k++)
        {
            ref MemcachedOperation operation = ref _operations[_inFlight[k]];
            operation.Note(_replies[k], hints);
            operation.OnReply(_replies[k], _maxAttempts, _node.Endpoint);
        }
    }

    // Returns why the server was unavailable, if it was (every unfinished operation of the segment then failed).
    private async ValueTask<MemcachedUnavailableException?> RunSegmentAsync(int start, int end, bool async, CancellationToken cancellationToken)
    {
        while (true)
        {
            int count = 0;
            for (int i = start; i < end; i++)
            {
                if (!_operations[i].IsDone)
                {
                    _requests[count] = _operations[i].NextRequest();
                    _inFlight[count++] = i;
                }
            }

            if (count == 0)
            {
                return null;
            }

            _inFlightCount = count;
            try
            {
                await _node.ExchangeAsync(_requests, count, _replies, this, async, cancellationToken).ConfigureAwait(false);
            }
            catch (MemcachedException ex)
            {
                // Including the operations whose replies came before the failure: the round as a whole is lost.
                StoreStatus status = ex is MemcachedUnavailableException ? StoreStatus.Unavailable : StoreStatus.Failed;
                for (int k = 0; k < count; k++)
                {
                    _operations[_inFlight[k]].Fail(status, ex);
                }

                return ex as MemcachedUnavailableException;
            }
        }
    }
}
