using System.Diagnostics.Metrics;

namespace SharedEntities;

/// <summary>
/// The <see cref="Meter"/> named <see cref="MeterName"/> and its counters (their names and meanings are in the README's
/// "Metrics"). Listen with <c>dotnet-counters monitor --counters SharedEntities</c>, OpenTelemetry's
/// <c>AddMeter("SharedEntities")</c>, or in tests <c>MetricCollector&lt;long&gt;(meterFactory, "SharedEntities",
/// "sharedentities.checks")</c>. The instruments themselves are not part of the API: their names are.
/// </summary>
public sealed class SharedEntitiesMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "SharedEntities";

    private readonly Meter _meter;

    /// <summary>Creates the counters on a meter from <paramref name="meterFactory"/> (DI), or on a meter of their own.</summary>
    public SharedEntitiesMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Checks = _meter.CreateCounter<long>("sharedentities.checks", "{entity}", "Entities checked against the store.");
        StoreBatches = _meter.CreateCounter<long>("sharedentities.store.batches", "{batch}", "Batches sent to the store (one round trip per server each).");
        StoreErrors = _meter.CreateCounter<long>("sharedentities.store.errors", "{operation}", "Store operations that failed or found the server unavailable.");
        Misses = _meter.CreateCounter<long>("sharedentities.misses", "{entity}", "Checks that found no token (evicted, expired, restarted, never seeded).");
        LeasesWon = _meter.CreateCounter<long>("sharedentities.leases.won", "{lease}", "Misses whose lease this process won (it fills the token).");
        LeasesLost = _meter.CreateCounter<long>("sharedentities.leases.lost", "{lease}", "Misses whose lease another process holds (this one asks the database).");
        Fallbacks = _meter.CreateCounter<long>("sharedentities.fallbacks", "{entity}", "Checks answered by the database because the store could not vouch (dirty token, lost lease, store unavailable).");
        Reloads = _meter.CreateCounter<long>("sharedentities.reloads", "{entity}", "Entities reloaded from the database because another process moved them on.");
        Commits = _meter.CreateCounter<long>("sharedentities.commits", "{commit}", "Database transactions committed through a scope.");
        Conflicts = _meter.CreateCounter<long>("sharedentities.conflicts", "{entity}", "Writes refused because another process committed first (lost updates prevented).");
        StoreAhead = _meter.CreateCounter<long>(
            "sharedentities.store_ahead", "{entity}", "Entities whose token or local copy was found ahead of the database (a restore, a failover, a token written outside the library).");
        Repairs = _meter.CreateCounter<long>(
            "sharedentities.repairs", "{entity}", "Rows whose version was advanced past a token that was ahead of the database, so that no version is ever reused.");
        DamagedTokens = _meter.CreateCounter<long>(
            "sharedentities.damaged_tokens", "{entity}", "Store values the library cannot have written (garbage, out of range, older than a copy) found and replaced as a miss would be.");
    }

    /// <summary>Entities checked against the store.</summary>
    internal Counter<long> Checks { get; }

    /// <summary>Batches sent to the store.</summary>
    internal Counter<long> StoreBatches { get; }

    /// <summary>Store operations that failed or found the server unavailable.</summary>
    internal Counter<long> StoreErrors { get; }

    /// <summary>Checks that found no token.</summary>
    internal Counter<long> Misses { get; }

    /// <summary>Leases won.</summary>
    internal Counter<long> LeasesWon { get; }

    /// <summary>Leases lost.</summary>
    internal Counter<long> LeasesLost { get; }

    /// <summary>Checks answered by the database.</summary>
    internal Counter<long> Fallbacks { get; }

    /// <summary>Entities reloaded.</summary>
    internal Counter<long> Reloads { get; }

    /// <summary>Commits.</summary>
    internal Counter<long> Commits { get; }

    /// <summary>Writes refused by the version check.</summary>
    internal Counter<long> Conflicts { get; }

    /// <summary>Entities found ahead of the database.</summary>
    internal Counter<long> StoreAhead { get; }

    /// <summary>Rows whose version was advanced past a token ahead of the database.</summary>
    internal Counter<long> Repairs { get; }

    /// <summary>Store values the library cannot have written, found and replaced.</summary>
    internal Counter<long> DamagedTokens { get; }

    /// <inheritdoc/>
    public void Dispose() => _meter.Dispose();
}
