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
    private readonly List<Caching.EntityCache> _caches = [];

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
        CacheHits = _meter.CreateCounter<long>(
            "sharedentities.cache.hits", "{entity}", "Reads by key served from the process-wide entity cache (the store vouched for the cached version).");
        CacheMisses = _meter.CreateCounter<long>(
            "sharedentities.cache.misses", "{entity}", "Reads by key the entity cache could not serve (no row cached, or the store did not vouch for it): loaded from the database.");
        CacheEvictions = _meter.CreateCounter<long>(
            "sharedentities.cache.evictions", "{entity}", "Rows the entity cache dropped to stay within its size limit.");
        _meter.CreateObservableUpDownCounter("sharedentities.cache.entries", ObserveEntries, "{entity}", "Rows held by the entity caches of the runtimes using these metrics.");
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

    /// <summary>Reads served from the entity cache.</summary>
    internal Counter<long> CacheHits { get; }

    /// <summary>Reads the entity cache could not serve.</summary>
    internal Counter<long> CacheMisses { get; }

    /// <summary>Rows evicted from the entity cache.</summary>
    internal Counter<long> CacheEvictions { get; }

    /// <inheritdoc/>
    public void Dispose() => _meter.Dispose();

    /// <summary>Counts <paramref name="cache"/>'s rows in <c>sharedentities.cache.entries</c> until <see cref="Unobserve"/>.</summary>
    internal void Observe(Caching.EntityCache cache)
    {
        lock (_caches)
        {
            _caches.Add(cache);
        }
    }

    internal void Unobserve(Caching.EntityCache cache)
    {
        lock (_caches)
        {
            _caches.Remove(cache);
        }
    }

    private long ObserveEntries()
    {
        lock (_caches)
        {
            return _caches.Sum(static c => (long)c.Count);
        }
    }
}
