using Microsoft.Extensions.Logging.Testing;
using SharedEntities.Stores;

namespace SharedEntities.Memcached.Tests;

internal static class TestSupport
{
    /// <summary>A key namespace of the test's own, so that tests can share a server.</summary>
    public static string UniquePrefix() => $"t{Guid.NewGuid():N}:";

    public static MemcachedStore Store(string servers, Action<MemcachedClientOptions>? configure = null, FakeLogger<MemcachedStore>? logger = null)
    {
        var options = new MemcachedClientOptions { Servers = servers };
        configure?.Invoke(options);
        return new MemcachedStore(options, logger);
    }

    /// <summary>Whether <paramref name="logger"/> has a warning containing <paramref name="text"/>.</summary>
    public static bool Logged(FakeLogger<MemcachedStore> logger, string text) =>
        logger.Collector.GetSnapshot().Any(r => r.Level == Microsoft.Extensions.Logging.LogLevel.Warning && r.Message.Contains(text, StringComparison.Ordinal));

    public static async Task RunAsync(ISharedStore store, StoreBatch batch, bool async)
    {
        if (async)
        {
            await store.ExecuteAsync(batch);
        }
        else
        {
            store.Execute(batch);
        }
    }

    public static StoreResult Single(ISharedStore store, in StoreOperation operation)
    {
        var batch = new StoreBatch();
        batch.Add(operation);
        store.Execute(batch);
        return batch[0];
    }

    public static StoreOperation Read(string key) => new(StoreOperationKind.Read, key);

    public static StoreOperation LeaseRead(string key, double seconds = 10) =>
        new(StoreOperationKind.Read, key, Ttl: TimeSpan.FromSeconds(seconds), Lease: true);

    public static StoreOperation Raise(string key, long value, double ttlSeconds = 3600) =>
        new(StoreOperationKind.Raise, key, value, Ttl: TimeSpan.FromSeconds(ttlSeconds));

    public static StoreOperation Publish(string key, long expected, long value) =>
        new(StoreOperationKind.Publish, key, value, Expected: expected, Ttl: TimeSpan.FromHours(1));

    public static StoreOperation Fill(string key, long value, ulong cas) =>
        new(StoreOperationKind.Fill, key, value, Cas: cas, Ttl: TimeSpan.FromHours(1));

    public static StoreOperation Increment(string key) => new(StoreOperationKind.Increment, key);

    public static StoreOperation Add(string key, long value) =>
        new(StoreOperationKind.AddIfAbsent, key, value, Ttl: TimeSpan.FromHours(1));

    /// <summary>Waits, bounded by time, until <paramref name="condition"/> holds; false if it never did.</summary>
    public static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(25);
        }

        return await condition();
    }
}
