using System.Diagnostics.Metrics;

namespace SharedEntities.Benchmarks;

/// <summary>Counts the memcached client's round trips (its <c>sharedentities.memcached.round_trips</c> counter), or other counters, during a run.</summary>
internal static class RoundTrips
{
    public static long Count(Action run) => CountAsync(() =>
    {
        run();
        return Task.CompletedTask;
    }).GetAwaiter().GetResult();

    public static Task<long> CountAsync(Func<Task> run) => CountAsync(run, "sharedentities.memcached.round_trips");

    /// <summary>The sum of the measurements of the counters named <paramref name="instruments"/> during <paramref name="run"/>.</summary>
    public static async Task<long> CountAsync(Func<Task> run, params string[] instruments)
    {
        long trips = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instruments.Contains(instrument.Name))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref trips, value));
        listener.Start();
        await run();
        return Interlocked.Read(ref trips);
    }
}
