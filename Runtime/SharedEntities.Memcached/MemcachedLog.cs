using Microsoft.Extensions.Logging;

namespace SharedEntities.Memcached;

internal static partial class MemcachedLog
{
    [LoggerMessage(100, LogLevel.Warning, "memcached at {Server} is down: its circuit breaker opened after {Failures} consecutive failures; its keys are reported unavailable for {Cooldown} before the next probe.")]
    public static partial void BreakerOpened(ILogger logger, string server, int failures, TimeSpan cooldown, Exception? error);

    [LoggerMessage(101, LogLevel.Warning, "memcached at {Server} is back: its circuit breaker closed.")]
    public static partial void BreakerClosed(ILogger logger, string server);

    [LoggerMessage(102, LogLevel.Debug, "memcached at {Server} is still down: the probe failed; next probe in {Cooldown}.")]
    public static partial void BreakerReopened(ILogger logger, string server, TimeSpan cooldown, Exception? error);

    [LoggerMessage(103, LogLevel.Debug, "An exchange with memcached at {Server} failed.")]
    public static partial void ExchangeFailed(ILogger logger, string server, Exception error);

    [LoggerMessage(104, LogLevel.Information, "Connected to memcached {Version} at {Server} (E flag: {CasOverride}, md x flag: {ValueRemoval}).")]
    public static partial void Connected(ILogger logger, string server, Version version, bool casOverride, bool valueRemoval);

    [LoggerMessage(105, LogLevel.Warning, "Connecting to memcached at {Server} failed on TLS or authentication; its keys are reported unavailable until it succeeds.")]
    public static partial void ConnectRefused(ILogger logger, string server, Exception error);

    [LoggerMessage(106, LogLevel.Warning, "memcached credentials are set without TLS: the password crosses the network in clear text.")]
    public static partial void CredentialsWithoutTls(ILogger logger);
}
