using System.Buffers;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Memcached;

/// <summary>
/// The production <see cref="ISharedStore"/>: tokens in one or more memcached servers (1.6 or later), spoken to with
/// the meta protocol. A batch is split by server (ketama consistent hashing); the servers are asked in parallel, each
/// in one pipelined round trip for reads, two for raises and publishes (read, then compare-and-swap), or one when the
/// connection's last sight of the key already meets their condition (see docs/protocol.md, "Operations on the wire").
/// </summary>
/// <remarks>
/// <para>Tokens are stored as decimal text, the tombstone as <c>DEL</c> (which memcached refuses to increment). A
/// lease is memcached's own: <c>mg … N&lt;ttl&gt;</c> creates an empty placeholder and tells exactly one reader it won
/// (<c>W</c>); a fill replaces the placeholder by its CAS.</para>
/// <para>A key always goes to its own server. When that server is down, times out or has its circuit breaker open,
/// the key's operations answer <see cref="StoreStatus.Unavailable"/>; they are never sent to another server, where a
/// stale or missing token could be mistaken for the truth. An unreadable reply answers <see cref="StoreStatus.Failed"/>.
/// Either way <see cref="StoreResult.Error"/> says what went wrong, and the store does not throw.</para>
/// <para>The <see cref="StoreResult.Cas"/> of a <see cref="StoreStatus.Stored"/> result is 0 except for increments:
/// the new CAS of a write stays with the connection that made it.</para>
/// </remarks>
public sealed class MemcachedStore : ISharedStore, IAsyncDisposable, IDisposable
{
    private readonly MemcachedClientOptions _options;
    private readonly MemcachedNode[] _nodes;
    private readonly KetamaRing _ring;
    private readonly MemcachedMetrics _metrics;
    private readonly TimeProvider _time;
    private volatile bool _disposed;

    /// <summary>Creates the store. Connections are opened on first use.</summary>
    /// <param name="options">The servers and client settings; validated here. Do not change them afterwards.</param>
    /// <param name="logger">For warnings when a server goes down or comes back.</param>
    /// <param name="meterFactory">Where the <c>SharedEntities</c> meter comes from (DI); by default a meter of the store's own.</param>
    /// <param name="timeProvider">The clock of TTLs beyond 30 days, reconnect backoff and circuit breakers (tests pass a fake one).</param>
    public MemcachedStore(
        MemcachedClientOptions options, ILogger<MemcachedStore>? logger = null, IMeterFactory? meterFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        options = _options = options.Copy(); // later changes to the caller's instance do not reach a running store
        _time = timeProvider ?? TimeProvider.System;
        _metrics = new MemcachedMetrics(meterFactory);
        Servers = MemcachedEndpoint.ParseList(options.Servers);
        ILogger log = (ILogger?)logger ?? NullLogger.Instance;
        if (options.Username is not null && options.Tls is null)
        {
            MemcachedLog.CredentialsWithoutTls(log);
        }

        _nodes = [.. Servers.Select(endpoint => new MemcachedNode(endpoint, options, log, _metrics, _time))];
        _ring = new KetamaRing(Servers);
    }

    /// <summary>Creates a store for <paramref name="servers"/> (e.g. <c>"127.0.0.1:11211"</c>) with default settings.</summary>
    public MemcachedStore(string servers)
        : this(new MemcachedClientOptions { Servers = servers })
    {
    }

    /// <summary>The servers, in the order listed.</summary>
    public IReadOnlyList<MemcachedEndpoint> Servers { get; }

    /// <summary>The server that holds <paramref name="key"/>.</summary>
    public MemcachedEndpoint GetServer(string key)
    {
        ValidateKey(key);
        return Servers[_ring.GetServer(key)];
    }

    /// <summary>Whether <paramref name="server"/>'s circuit breaker is open (the store considers it down).</summary>
    public bool IsCircuitOpen(MemcachedEndpoint server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return _nodes.FirstOrDefault(n => n.Endpoint == server)?.IsCircuitOpen
            ?? throw new ArgumentException($"{server.Address} is not one of this store's servers.", nameof(server));
    }

    internal IReadOnlyList<MemcachedNode> Nodes => _nodes;

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless <paramref name="key"/> is a valid memcached key: 1 to 250
    /// characters of printable ASCII without spaces (what <see cref="StoreKeys"/> produces).
    /// </summary>
    public static void ValidateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length is 0 or > StoreKeys.MaxKeyLength)
        {
            throw new ArgumentException(
                $"A memcached key must be 1 to {StoreKeys.MaxKeyLength} bytes long; this one has {key.Length} characters. Encode keys with StoreKeys.For.", nameof(key));
        }

        int bad = key.AsSpan().IndexOfAnyExceptInRange('!', '~');
        if (bad >= 0)
        {
            string shown = key.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
            throw new ArgumentException(
                $"A memcached key may hold only printable ASCII without spaces; '{shown}' has U+{(int)key[bad]:X4} at position {bad}. Encode keys with StoreKeys.For.",
                nameof(key));
        }
    }

    /// <inheritdoc/>
    public void Execute(StoreBatch batch)
    {
        ValueTask task = ExecuteCoreAsync(batch, async: false, CancellationToken.None);
        if (!task.IsCompleted)
        {
            throw new InvalidOperationException("The synchronous memcached path did not complete synchronously.");
        }

        task.GetAwaiter().GetResult();
    }

    /// <inheritdoc/>
    public ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default) =>
        ExecuteCoreAsync(batch, async: true, cancellationToken);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (MemcachedNode node in _nodes)
        {
            node.Dispose();
        }

        _metrics.Dispose();
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private async ValueTask ExecuteCoreAsync(StoreBatch batch, bool async, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        int count = batch.Count;
        if (count == 0)
        {
            return;
        }

        // Everything is checked before anything is sent: a bad request fails the call, not half a batch.
        IReadOnlyList<StoreOperation> operations = batch.Operations;
        NodeBatch?[] parts = new NodeBatch?[_nodes.Length];
        int[]? owners = _nodes.Length == 1 ? null : ArrayPool<int>.Shared.Rent(count);
        try
        {
            if (owners is null)
            {
                NodeBatch part = parts[0] = new NodeBatch(_nodes[0], count, _options.MaxCasAttempts);
                for (int i = 0; i < count; i++)
                {
                    StoreOperation operation = operations[i];
                    Validate(operation, i);
                    part.Add(i, operation, TokenText.Seconds(operation.Ttl, _time));
                }
            }
            else
            {
                int[] perNode = new int[_nodes.Length];
                for (int i = 0; i < count; i++)
                {
                    StoreOperation operation = operations[i];
                    Validate(operation, i);
                    perNode[owners[i] = _ring.GetServer(operation.Key)]++;
                }

                for (int i = 0; i < count; i++)
                {
                    StoreOperation operation = operations[i];
                    int node = owners[i];
                    NodeBatch part = parts[node] ??= new NodeBatch(_nodes[node], perNode[node], _options.MaxCasAttempts);
                    part.Add(i, operation, TokenText.Seconds(operation.Ttl, _time));
                }
            }

            if (!async)
            {
                foreach (NodeBatch? part in parts)
                {
                    if (part is not null)
                    {
                        await part.RunAsync(async: false, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            else if (parts.Count(p => p is not null) == 1)
            {
                await parts.First(p => p is not null)!.RunAsync(async: true, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await Task.WhenAll(parts.Where(p => p is not null).Select(p => p!.RunAsync(async: true, cancellationToken).AsTask())).ConfigureAwait(false);
            }

            foreach (NodeBatch? part in parts)
            {
                if (part is not null)
                {
                    part.CopyResultsTo(batch);
                    Record(part.Operations, part.Node.ServerTag);
                }
            }
        }
        finally
        {
            foreach (NodeBatch? part in parts)
            {
                part?.Dispose();
            }

            if (owners is not null)
            {
                ArrayPool<int>.Shared.Return(owners);
            }
        }
    }

    private static void Validate(in StoreOperation operation, int index)
    {
        ValidateKey(operation.Key);
        if ((uint)operation.Kind > (uint)StoreOperationKind.AddIfAbsent)
        {
            throw new ArgumentOutOfRangeException(nameof(operation), operation.Kind, $"Operation {index} of the batch has an unknown kind.");
        }
    }

    private void Record(ReadOnlySpan<MemcachedOperation> operations, KeyValuePair<string, object?> server)
    {
        long hits = 0, misses = 0, won = 0, lost = 0, errors = 0;
        foreach (ref readonly MemcachedOperation operation in operations)
        {
            switch (operation.Result.Status)
            {
                case StoreStatus.Hit:
                    hits++;
                    break;
                case StoreStatus.Miss when operation.Operation.Kind == StoreOperationKind.Read:
                    misses++;
                    break;
                case StoreStatus.LeaseWon:
                    misses++;
                    won++;
                    break;
                case StoreStatus.LeaseLost:
                    misses++;
                    lost++;
                    break;
                case StoreStatus.Unavailable or StoreStatus.Failed:
                    errors++;
                    break;
                default:
                    break;
            }
        }

        Add(_metrics.Hits, hits, server);
        Add(_metrics.Misses, misses, server);
        Add(_metrics.LeasesWon, won, server);
        Add(_metrics.LeasesLost, lost, server);
        Add(_metrics.Errors, errors, server);

        static void Add(Counter<long> counter, long value, KeyValuePair<string, object?> server)
        {
            if (value > 0)
            {
                counter.Add(value, server);
            }
        }
    }
}
