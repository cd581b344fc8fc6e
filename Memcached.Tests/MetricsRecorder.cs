using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// Sums the <c>sharedentities.memcached.*</c> counters. Tests run in parallel and every store reports to a meter
/// named <c>SharedEntities</c>, so per-server counters are filtered by the <c>memcached.server</c> tag.
/// </summary>
public sealed class MetricsRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Name, string? Server), long> _totals = new();

    public MetricsRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SharedEntitiesMetrics.MeterName && instrument.Name.StartsWith("sharedentities.memcached.", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string? server = null;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == MemcachedMetrics.ServerTag)
                {
                    server = tag.Value as string;
                }
            }

            _totals.AddOrUpdate((instrument.Name, server), value, (_, total) => total + value);
        });
        _listener.Start();
    }

    /// <summary>The total of <paramref name="name"/> (without the <c>sharedentities.memcached.</c> prefix) for one server.</summary>
    public long Get(string name, string server) => _totals.GetValueOrDefault(("sharedentities.memcached." + name, server));

    public void Dispose() => _listener.Dispose();
}
