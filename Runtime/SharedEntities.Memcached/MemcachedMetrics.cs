using System.Diagnostics.Metrics;

namespace SharedEntities.Memcached;

/// <summary>
/// The memcached store's counters, on the meter named <see cref="SharedEntitiesMetrics.MeterName"/>. Every
/// measurement carries the server's address as the tag <c>memcached.server</c>.
/// </summary>
internal sealed class MemcachedMetrics : IDisposable
{
    /// <summary>The tag naming the server.</summary>
    public const string ServerTag = "memcached.server";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public MemcachedMetrics(IMeterFactory? meterFactory)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(SharedEntitiesMetrics.MeterName) ?? new Meter(SharedEntitiesMetrics.MeterName);
        RoundTrips = _meter.CreateCounter<long>("sharedentities.memcached.round_trips", "{exchange}", "Pipelined exchanges with a server (a batch's part for that server, sent and answered).");
        Commands = _meter.CreateCounter<long>("sharedentities.memcached.commands", "{command}", "Meta commands sent (mg, ms, ma, md; not the mn terminators).");
        Hits = _meter.CreateCounter<long>("sharedentities.memcached.hits", "{operation}", "Reads that found a token.");
        Misses = _meter.CreateCounter<long>("sharedentities.memcached.misses", "{operation}", "Reads that found no token (including those that took or lost a lease).");
        LeasesWon = _meter.CreateCounter<long>("sharedentities.memcached.leases.won", "{lease}", "Reads that missed and won the lease (a placeholder was created for this caller to fill).");
        LeasesLost = _meter.CreateCounter<long>("sharedentities.memcached.leases.lost", "{lease}", "Reads that missed while another caller held the lease.");
        Errors = _meter.CreateCounter<long>("sharedentities.memcached.errors", "{operation}", "Operations answered Unavailable or Failed.");
        Timeouts = _meter.CreateCounter<long>("sharedentities.memcached.timeouts", "{exchange}", "Exchanges or connects that timed out (the connection was closed).");
        BreakerOpened = _meter.CreateCounter<long>("sharedentities.memcached.breaker.opened", "{event}", "Times a server's circuit breaker opened (including re-opening after a failed probe).");
    }

    public Counter<long> RoundTrips { get; }

    public Counter<long> Commands { get; }

    public Counter<long> Hits { get; }

    public Counter<long> Misses { get; }

    public Counter<long> LeasesWon { get; }

    public Counter<long> LeasesLost { get; }

    public Counter<long> Errors { get; }

    public Counter<long> Timeouts { get; }

    public Counter<long> BreakerOpened { get; }

    public void Dispose()
    {
        // A meter from an IMeterFactory belongs to the factory.
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
