using System.Diagnostics.Metrics;

namespace SharedEntities.Tests;

/// <summary>Listens to one counter instance (tests run in parallel, so never to a meter name).</summary>
internal static class MetricsProbe
{
    public static MeterListener Count(Counter<long> counter, Action<long> onMeasurement)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument, counter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => onMeasurement(value));
        listener.Start();
        return listener;
    }
}
