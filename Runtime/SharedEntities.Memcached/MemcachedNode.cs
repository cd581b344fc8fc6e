using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace SharedEntities.Memcached;

/// <summary>
/// One memcached server: a pool of <see cref="MetaConnection"/>s, reconnects with exponential backoff, and a
/// <see cref="CircuitBreaker"/>. An exchange either completes or throws a <see cref="MemcachedException"/> (or
/// <see cref="OperationCanceledException"/>); a failed connection is closed, never returned to the pool.
/// </summary>
internal sealed class MemcachedNode : IDisposable
{
    private readonly MemcachedClientOptions _options;
    private readonly ConnectionSecurity _security;
    private readonly ILogger _logger;
    private readonly MemcachedMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ConcurrentStack<MetaConnection> _idle = new();
    private readonly SemaphoreSlim _slots;
    private readonly CircuitBreaker _breaker;
    private readonly KeyValuePair<string, object?> _serverTag;
    private readonly Lock _reconnectGate = new();
    private int _connectFailures;
    private DateTimeOffset _nextConnectAt;
    private Exception? _lastConnectError;
    private volatile bool _disposed;

    public MemcachedNode(MemcachedEndpoint endpoint, MemcachedClientOptions options, ILogger logger, MemcachedMetrics metrics, TimeProvider time)
    {
        Endpoint = endpoint;
        _options = options;
        _security = ConnectionSecurity.From(options);
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _slots = new SemaphoreSlim(options.MaxConnectionsPerServer, options.MaxConnectionsPerServer);
        _breaker = new CircuitBreaker(options.CircuitBreakerThreshold, options.CircuitBreakerCooldown, time);
        _serverTag = new(MemcachedMetrics.ServerTag, endpoint.Address);
    }

    /// <summary>The server.</summary>
    public MemcachedEndpoint Endpoint { get; }

    /// <summary>What the server said about itself at the last connect (null before the first).</summary>
    public MemcachedServerInfo? ServerInfo { get; private set; }

    /// <summary>The circuit breaker is open (the node is considered down).</summary>
    public bool IsCircuitOpen => _breaker.IsOpen;

    /// <summary>The <c>memcached.server</c> tag of this node's measurements.</summary>
    public KeyValuePair<string, object?> ServerTag => _serverTag;

    /// <summary>Connections open and idle in the pool.</summary>
    public int IdleConnections => _idle.Count;

    /// <summary>
    /// Exchanges <paramref name="count"/> requests with the server on one pooled connection (see
    /// <see cref="MetaConnection.ExchangeAsync"/> for what <paramref name="party"/> sees).
    /// </summary>
    public async ValueTask ExchangeAsync(
        MetaRequest[] requests, int count, MetaReply[] replies, IExchangeParty? party, bool async, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_breaker.TryEnter(out bool probing, out TimeSpan retryAfter))
        {
            throw new MemcachedUnavailableException(
                Endpoint,
                retryAfter > TimeSpan.Zero
                    ? $"memcached at {Endpoint.Address} is considered down (circuit breaker open for another {retryAfter.TotalMilliseconds:0} ms); not sending."
                    : $"memcached at {Endpoint.Address} is considered down (circuit breaker open, a probe is in flight); not sending.");
        }

        bool gotSlot;
        try
        {
            gotSlot = async
                ? await _slots.WaitAsync(_options.OperationTimeout, cancellationToken).ConfigureAwait(false)
                : _slots.Wait(_options.OperationTimeout, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            _breaker.OnAbandoned();
            throw;
        }

        if (!gotSlot)
        {
            _breaker.OnAbandoned();
            throw new MemcachedTimeoutException(
                Endpoint,
                $"All {_options.MaxConnectionsPerServer} connections to memcached at {Endpoint.Address} stayed busy for {_options.OperationTimeout.TotalMilliseconds:0} ms.");
        }

        MetaConnection? connection = null;
        try
        {
            connection = await RentAsync(probing, async, cancellationToken).ConfigureAwait(false);

            // The full timeout, however long the wait for a slot was: a busy pool is no sign of a sick server.
            await connection.ExchangeAsync(requests, count, replies, party, _options.OperationTimeout, async, cancellationToken).ConfigureAwait(false);
            _metrics.RoundTrips.Add(1, _serverTag);
            _metrics.Commands.Add(count, _serverTag);
            _idle.Push(connection);
            connection = null;
            if (_breaker.OnSuccess() == BreakerTransition.Closed)
            {
                MemcachedLog.BreakerClosed(_logger, Endpoint.Address);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _breaker.OnAbandoned();
            throw;
        }
        catch (MemcachedException ex)
        {
            OnFailure(ex);
            throw;
        }
        finally
        {
            connection?.Dispose();
            _slots.Release();
            if (_disposed)
            {
                DrainIdle();
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _disposed = true;
        DrainIdle();
    }

    // A probe of an open circuit skips the reconnect backoff: the cool-down already spaced the attempts.
    private async ValueTask<MetaConnection> RentAsync(bool probing, bool async, CancellationToken cancellationToken)
    {
        while (_idle.TryPop(out MetaConnection? idle))
        {
            if (idle.IsReusable)
            {
                return idle;
            }

            idle.Dispose();
        }

        lock (_reconnectGate)
        {
            DateTimeOffset now = _time.GetUtcNow();
            if (now < _nextConnectAt && !probing)
            {
                throw new MemcachedUnavailableException(
                    Endpoint,
                    $"Not reconnecting to memcached at {Endpoint.Address} for another {(_nextConnectAt - now).TotalMilliseconds:0} ms after {_connectFailures} failed attempt(s); last: {_lastConnectError?.Message}",
                    _lastConnectError);
            }
        }

        MetaConnection connection;
        try
        {
            connection = await MetaConnection.OpenAsync(Endpoint, _options.ConnectTimeout, _security, async, cancellationToken).ConfigureAwait(false);
        }
        catch (MemcachedException ex)
        {
            if (ex is MemcachedAuthenticationException or MemcachedTlsException)
            {
                // A configuration error, not a sick server: say so at every attempt (the backoff spaces them).
                MemcachedLog.ConnectRefused(_logger, Endpoint.Address, ex);
            }

            lock (_reconnectGate)
            {
                _connectFailures++;
                _lastConnectError = ex;
                double delayMs = _options.ReconnectDelay.TotalMilliseconds * Math.Pow(2, Math.Min(_connectFailures - 1, 30));
                _nextConnectAt = _time.GetUtcNow() + TimeSpan.FromMilliseconds(Math.Min(delayMs, _options.MaxReconnectDelay.TotalMilliseconds));
            }

            throw;
        }

        lock (_reconnectGate)
        {
            _connectFailures = 0;
            _lastConnectError = null;
        }

        if (ServerInfo != connection.ServerInfo)
        {
            ServerInfo = connection.ServerInfo;
            MemcachedLog.Connected(_logger, Endpoint.Address, ServerInfo.Version, ServerInfo.SupportsCasOverride, ServerInfo.SupportsValueRemoval);
        }

        return connection;
    }

    private void OnFailure(MemcachedException error)
    {
        MemcachedLog.ExchangeFailed(_logger, Endpoint.Address, error);
        if (error is MemcachedTimeoutException)
        {
            _metrics.Timeouts.Add(1, _serverTag);
        }

        if (error is MemcachedUnavailableException)
        {
            // The server went away or hangs: the idle connections are most likely dead as well.
            DrainIdle();
        }

        switch (_breaker.OnFailure())
        {
            case BreakerTransition.Opened:
                _metrics.BreakerOpened.Add(1, _serverTag);
                MemcachedLog.BreakerOpened(_logger, Endpoint.Address, _options.CircuitBreakerThreshold, _options.CircuitBreakerCooldown, error);
                break;
            case BreakerTransition.Reopened:
                _metrics.BreakerOpened.Add(1, _serverTag);
                MemcachedLog.BreakerReopened(_logger, Endpoint.Address, _options.CircuitBreakerCooldown, error);
                break;
            default:
                break;
        }
    }

    private void DrainIdle()
    {
        while (_idle.TryPop(out MetaConnection? idle))
        {
            idle.Dispose();
        }
    }
}
