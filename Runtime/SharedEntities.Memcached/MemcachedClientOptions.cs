using System.Globalization;

namespace SharedEntities.Memcached;

/// <summary>
/// Settings of a <see cref="MemcachedStore"/>: the servers, timeouts, the connection pool, reconnects, the circuit
/// breaker, TLS and authentication. Token lifetimes are not here: each operation carries its own TTL.
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

    /// <summary>
    /// TLS for every connection (memcached started with <c>-Z</c>); null (the default) for plain TCP. The whole
    /// connection is encrypted, the authentication included.
    /// </summary>
    public MemcachedTlsOptions? Tls { get; set; }

    /// <summary>
    /// The user of memcached's ASCII authentication (memcached started with <c>-Y authfile</c>, lines
    /// <c>user:password</c>); null (the default) for none. Set together with <see cref="Password"/>. Without
    /// <see cref="Tls"/> both cross the network in clear text.
    /// </summary>
    public string? Username { get; set; }

    /// <summary>The password of <see cref="Username"/>. Never logged, never in a message or in <see cref="ToString"/>.</summary>
    public string? Password { get; set; }

    /// <summary>The longest <see cref="Username"/> and <see cref="Password"/> together that memcached 1.6.18 accepts.</summary>
    internal const int MaxCredentialsLength = 111;

    /// <summary>A copy of these settings (the one a <see cref="MemcachedStore"/> keeps: changing the original later has no effect on it).</summary>
    internal MemcachedClientOptions Copy() => new()
    {
        Servers = Servers,
        ConnectTimeout = ConnectTimeout,
        OperationTimeout = OperationTimeout,
        MaxConnectionsPerServer = MaxConnectionsPerServer,
        ReconnectDelay = ReconnectDelay,
        MaxReconnectDelay = MaxReconnectDelay,
        CircuitBreakerThreshold = CircuitBreakerThreshold,
        CircuitBreakerCooldown = CircuitBreakerCooldown,
        MaxCasAttempts = MaxCasAttempts,
        Tls = Tls?.Copy(),
        Username = Username,
        Password = Password,
    };

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
        ValidateCredentials();
        Tls?.Validate();
    }

    /// <summary>The settings, without the credentials (whether they are set, only).</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"Servers={Servers}, ConnectTimeout={ConnectTimeout}, OperationTimeout={OperationTimeout}, MaxConnectionsPerServer={MaxConnectionsPerServer}, " +
        $"Tls={(Tls is null ? "off" : "on")}, Authentication={(Username is null ? "off" : "on")}");

    // memcached splits "user password" at the space and reads its auth file as user:password lines.
    private void ValidateCredentials()
    {
        if (Username is null && Password is null)
        {
            return;
        }

        if (Username is null)
        {
            throw new ArgumentException("Username must be set when Password is.", nameof(Username));
        }

        if (Password is null)
        {
            throw new ArgumentException("Password must be set when Username is.", nameof(Password));
        }

        if (Username.Length == 0 || Username.Any(c => c is < '!' or > '~' or ':'))
        {
            throw new ArgumentException("Username must be one or more printable ASCII characters, without spaces or ':' (memcached's auth file holds user:password lines).", nameof(Username));
        }

        // The message never shows the password, not even a part of it.
        if (Password.Length == 0 || Password.Any(c => c is < '!' or > '~'))
        {
            throw new ArgumentException("Password must be one or more printable ASCII characters, without spaces (memcached splits the credentials at the first space).", nameof(Password));
        }

        if (Username.Length + Password.Length > MaxCredentialsLength)
        {
            throw new ArgumentException($"Password and Username together must be at most {MaxCredentialsLength} characters (memcached refuses longer credentials).", nameof(Password));
        }
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
