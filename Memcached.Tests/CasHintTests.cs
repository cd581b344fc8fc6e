using System.Globalization;
using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// A raise or publish whose condition the connection's last sight of the key already meets is one <c>ms … C&lt;cas&gt;</c>
/// round trip instead of <c>mg</c> then <c>ms</c>; a hint that went out of date costs a round trip, never a wrong write.
/// Each test has a server of its own, so that the round trips counted are its own.
/// </summary>
public sealed class CasHintTests
{
    [Fact]
    public void A_write_after_a_read_or_a_write_of_the_same_key_takes_one_round_trip()
    {
        using var server = new MemcachedServer();
        using var metrics = new MetricsRecorder();
        using MemcachedStore store = Store(server.Address);
        string key = UniquePrefix() + "k";
        long RoundTripsOf(in StoreOperation operation, StoreStatus status, long value)
        {
            long before = metrics.Get("round_trips", server.Address);
            StoreResult result = Single(store, operation);
            Assert.Equal((status, value), (result.Status, result.Value));
            return metrics.Get("round_trips", server.Address) - before;
        }

        Assert.Equal(2, RoundTripsOf(Raise(key, 10), StoreStatus.Stored, 10)); // a miss: mg, then add
        Assert.Equal(1, RoundTripsOf(Publish(key, 10, 11), StoreStatus.Stored, 11)); // the add returned the CAS
        Assert.Equal(1, RoundTripsOf(Raise(key, 12), StoreStatus.Stored, 12)); // the publish returned the CAS
        Assert.Equal(1, RoundTripsOf(Publish(key, 12, 13), StoreStatus.Stored, 13));
        Assert.Equal(1, RoundTripsOf(Publish(key, 12, 14), StoreStatus.NotStored, 13)); // the hint does not meet it: mg, as before

        using MemcachedStore other = Store(server.Address); // another connection: it has seen nothing yet
        string otherKey = UniquePrefix() + "k";
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(otherKey, 5)).Status);
        long before = metrics.Get("round_trips", server.Address);
        Assert.Equal(StoreStatus.Hit, Single(other, Read(otherKey)).Status);
        Assert.Equal(StoreStatus.Stored, Single(other, Raise(otherKey, 6)).Status); // the read's CAS
        Assert.Equal(2, metrics.Get("round_trips", server.Address) - before);
        Assert.Equal("VA 1\r\n6\r\n", server.Raw($"mg {otherKey} v\r\n"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_hint_out_of_date_costs_one_round_trip_and_never_a_wrong_write(bool async)
    {
        using var server = new MemcachedServer();
        using var metrics = new MetricsRecorder();
        using MemcachedStore store = Store(server.Address, o => o.MaxCasAttempts = 1); // the stale hint is not an attempt
        string raised = UniquePrefix() + "raised";
        string published = UniquePrefix() + "published";
        var batch = new StoreBatch();
        batch.Add(Raise(raised, 10));
        batch.Add(Raise(published, 5));
        await RunAsync(store, batch, async);

        // Another client moves the first token above the next raise, and rewrites the second with the same value.
        server.Raw($"ms {raised} 2 T0\r\n20\r\nms {published} 1 T0\r\n5\r\n");
        long before = metrics.Get("round_trips", server.Address);
        batch = new StoreBatch();
        batch.Add(Raise(raised, 15));
        batch.Add(Publish(published, 5, 6));
        await RunAsync(store, batch, async);

        Assert.Equal((StoreStatus.NotStored, 20L), (batch[0].Status, batch[0].Value)); // never lowered to 15
        Assert.Equal((StoreStatus.Stored, 6L), (batch[1].Status, batch[1].Value)); // still the expected token: published
        Assert.Equal(3, metrics.Get("round_trips", server.Address) - before); // hinted ms (EX, EX), mg, ms
        Assert.Equal("VA 2\r\n20\r\n", server.Raw($"mg {raised} v\r\n"));
        Assert.Equal("VA 1\r\n6\r\n", server.Raw($"mg {published} v\r\n"));
    }

    [Fact]
    public void Hints_do_not_outlive_a_restart_even_when_the_restarted_server_hands_out_the_same_CAS()
    {
        using var server = new MemcachedServer();
        using MemcachedStore store = Store(server.Address);
        string key = UniquePrefix() + "k";
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(key, 3)).Status); // the store's connection saw (3, cas)
        ulong seen = CasOf(server.Raw($"mg {key} c\r\n"));

        // CAS numbers start again at 1 after a restart: store other items until the key's next store gets the same
        // CAS, holding a higher token. A hint kept across the restart would let a raise to 4 overwrite it.
        server.Restart();
        ulong cas = 0;
        for (int i = 0; i < 10_000 && cas + 1 < seen; i++)
        {
            cas = CasOf(server.Raw($"ms {key}:filler{i} 1 T0 c\r\n0\r\n"));
        }

        Assert.Equal(seen, CasOf(server.Raw($"ms {key} 1 T0 c\r\n5\r\n")));

        StoreResult raised = Single(store, Raise(key, 4));
        Assert.Equal((StoreStatus.NotStored, 5L), (raised.Status, raised.Value));
        Assert.Equal("VA 1\r\n5\r\n", server.Raw($"mg {key} v\r\n"));
    }

    // "HD c42" or "VA 1 c42": the number after " c".
    private static ulong CasOf(string reply)
    {
        string line = reply.Split("\r\n")[0];
        string flag = line.Split(' ').Single(part => part.StartsWith('c'));
        return ulong.Parse(flag[1..], CultureInfo.InvariantCulture);
    }
}
