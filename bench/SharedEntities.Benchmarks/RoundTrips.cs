using System.Diagnostics.Metrics;

namespace SharedEntities.Benchmarks;

/// <summary>Counts the memcached client's round trips (its <c>sharedentities.memcached.round_trips</c> counter) during a run.</summary>
internal static class RoundTrips
{
    public static long Count(Action run) => CountAsync(() =>
    {
        run();
        return Task.CompletedTask;
    }).GetAwaiter().GetResult();

    public static async Task<long> CountAsync(Func<Task> run)
    {
        long trips = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "sharedentities.memcached.round_trips")
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
