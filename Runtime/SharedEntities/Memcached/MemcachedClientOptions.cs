namespace SharedEntities.Memcached;

/// <summary>
/// Settings of a <see cref="MemcachedStore"/>: the servers, timeouts, the connection pool, reconnects and the circuit
/// breaker. Token lifetimes are not here: each operation carries its own TTL.
/// </summary>
public sealed class MemcachedClientOptions
{
    /// <summary>
    /// The servers: <c>"host:port"</c> entries separated by commas, each optionally followed by a space and a weight,
    /// e.g. <c>"10.0.0.1:11211,10.0.0.2:11211 2"</c>. Keys are spread over them by consistent (ketama) hashing.
    /// </summary>
    public string Servers { get; set; } = "127.0.0.1:11211";

    /// <summary>How long opening a connection (TCP connect and the version handshake) may take. Default: 1 second.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long one pipelined exchange with a server may take, from the first byte sent to the last reply; past it the
    /// connection is closed and its operations are unavailable. A caller also waits at most this long for a free
    /// connection (see <see cref="MaxConnectionsPerServer"/>). Default: 1 second.
    /// </summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The most connections open to one server at a time. Default: 8.</summary>
    public int MaxConnectionsPerServer { get; set; } = 8;

    /// <summary>The wait before reconnecting after a failed connect; it doubles with each failure. Default: 50 ms.</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The longest wait between reconnect attempts. Default: 5 seconds.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After this many consecutive failed exchanges with a server its circuit opens: its operations fail fast as
    /// unavailable for <see cref="CircuitBreakerCooldown"/>, then one exchange probes it. Default: 5.
    /// </summary>
    public int CircuitBreakerThreshold { get; set; } = 5;

    /// <summary>How long an open circuit fails fast before it lets one probe through. Default: 5 seconds.</summary>
    public TimeSpan CircuitBreakerCooldown { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many compare-and-swap rounds a raise or publish tries while other clients keep changing the item, before
    /// it reports <see cref="Stores.StoreStatus.Failed"/>. Default: 16.
    /// </summary>
    public int MaxCasAttempts { get; set; } = 16;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        _ = MemcachedEndpoint.ParseList(Servers ?? throw new ArgumentException("Servers must be set, e.g. \"127.0.0.1:11211\".", nameof(Servers)));
        RequirePositive(ConnectTimeout, nameof(ConnectTimeout));
        RequirePositive(OperationTimeout, nameof(OperationTimeout));
        RequirePositive(ReconnectDelay, nameof(ReconnectDelay));
        RequirePositive(CircuitBreakerCooldown, nameof(CircuitBreakerCooldown));
        if (MaxReconnectDelay < ReconnectDelay)
        {
            throw new ArgumentException($"MaxReconnectDelay ({MaxReconnectDelay}) must not be below ReconnectDelay ({ReconnectDelay}).", nameof(MaxReconnectDelay));
        }

        RequireRange(MaxConnectionsPerServer, 1, 1024, nameof(MaxConnectionsPerServer));
        RequireRange(CircuitBreakerThreshold, 1, 1000, nameof(CircuitBreakerThreshold));
        RequireRange(MaxCasAttempts, 1, 1000, nameof(MaxCasAttempts));
    }

    private static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentException($"{name} must be positive and below 24 days; it is {value}.", name);
        }
    }

    private static void RequireRange(int value, int min, int max, string name)
    {
        if (value < min || value > max)
        {
            throw new ArgumentException($"{name} must be from {min} to {max}; it is {value}.", name);
        }
    }
}
