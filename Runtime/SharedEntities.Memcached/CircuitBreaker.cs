namespace SharedEntities.Memcached;

/// <summary>What a <see cref="CircuitBreaker"/> call changed, for logging and metrics.</summary>
internal enum BreakerTransition : byte
{
    /// <summary>Nothing.</summary>
    None,

    /// <summary>Closed → open: the threshold of consecutive failures was reached.</summary>
    Opened,

    /// <summary>Half-open → open: the probe after the cool-down failed.</summary>
    Reopened,

    /// <summary>Open or half-open → closed: an exchange succeeded.</summary>
    Closed,
}

/// <summary>
/// A per-server circuit breaker. After <c>threshold</c> consecutive failures it opens: callers fail fast for the
/// cool-down. Then it lets exactly one caller through as a probe (half-open); the probe's success closes it, its
/// failure opens it for another cool-down. Thread-safe.
/// </summary>
internal sealed class CircuitBreaker(int threshold, TimeSpan cooldown, TimeProvider time)
{
    private readonly Lock _gate = new();
    private int _consecutiveFailures;
    private bool _open;
    private bool _probeInFlight;
    private DateTimeOffset _openUntil;

    /// <summary>The circuit is open or half-open.</summary>
    public bool IsOpen
    {
        get
        {
            lock (_gate)
            {
                return _open;
            }
        }
    }

    /// <summary>
    /// Whether a caller may talk to the server now. When it may not, <paramref name="retryAfter"/> says how long
    /// the circuit stays open (zero while another caller's probe is in flight); <paramref name="probing"/> tells the one
    /// caller let through an open circuit that it is the probe.
    /// </summary>
    public bool TryEnter(out bool probing, out TimeSpan retryAfter)
    {
        lock (_gate)
        {
            probing = false;
            retryAfter = TimeSpan.Zero;
            if (!_open)
            {
                return true;
            }

            DateTimeOffset now = time.GetUtcNow();
            if (now < _openUntil)
            {
                retryAfter = _openUntil - now;
                return false;
            }

            if (_probeInFlight)
            {
                return false;
            }

            _probeInFlight = true;
            probing = true;
            return true;
        }
    }

    /// <summary>Records a successful exchange.</summary>
    public BreakerTransition OnSuccess()
    {
        lock (_gate)
        {
            _consecutiveFailures = 0;
            _probeInFlight = false;
            if (!_open)
            {
                return BreakerTransition.None;
            }

            _open = false;
            return BreakerTransition.Closed;
        }
    }

    /// <summary>Records a failed exchange.</summary>
    public BreakerTransition OnFailure()
    {
        lock (_gate)
        {
            _consecutiveFailures++;
            if (_open)
            {
                if (!_probeInFlight)
                {
                    return BreakerTransition.None; // A straggler that entered before the circuit opened.
                }

                _probeInFlight = false;
                _openUntil = time.GetUtcNow() + cooldown;
                return BreakerTransition.Reopened;
            }

            if (_consecutiveFailures < threshold)
            {
                return BreakerTransition.None;
            }

            _open = true;
            _openUntil = time.GetUtcNow() + cooldown;
            return BreakerTransition.Opened;
        }
    }

    /// <summary>A caller that entered gave up without a verdict (cancelled, no free connection): free the probe slot.</summary>
    public void OnAbandoned()
    {
        lock (_gate)
        {
            _probeInFlight = false;
        }
    }
}
