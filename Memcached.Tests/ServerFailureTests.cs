using Microsoft.Extensions.Logging.Testing;
using System.Diagnostics;
using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>Real servers that die, restart and evict: a key is unavailable or a miss, never a stale hit.</summary>
public sealed class ServerFailureTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public void After_a_restart_the_first_write_succeeds_on_a_new_connection_instead_of_the_closed_pooled_one()
    {
        using var server = new MemcachedServer();
        using MemcachedStore store = Store(server.Address);
        string key = UniquePrefix() + "k";
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(key, 5)).Status);

        server.Restart();
        StoreResult raised = Single(store, Raise(key, 7));
        Assert.Equal(StoreStatus.Stored, raised.Status);
        Assert.Equal(7, raised.Value);
    }

    [Fact]
    public async Task A_killed_node_makes_only_its_keys_unavailable_opens_its_breaker_and_is_used_again_after_restart()
    {
        using var metrics = new MetricsRecorder();
        using var a = new MemcachedServer();
        using var b = new MemcachedServer();
        using var c = new MemcachedServer();
        var log = new FakeLogger<MemcachedStore>();
        using MemcachedStore store = Store(
            $"{a.Address},{b.Address},{c.Address}",
            o =>
            {
                o.CircuitBreakerThreshold = 2;
                o.CircuitBreakerCooldown = TimeSpan.FromMilliseconds(300);
                o.ReconnectDelay = TimeSpan.FromMilliseconds(20);
                o.MaxReconnectDelay = TimeSpan.FromMilliseconds(100);
            },
            log);
        string prefix = UniquePrefix();
        string[] keys = [.. Enumerable.Range(0, 300).Select(i => $"{prefix}{i}")];
        var raises = new StoreBatch();
        for (int i = 0; i < keys.Length; i++)
        {
            raises.Add(Raise(keys[i], (2 * i) + 1));
        }

        await store.ExecuteAsync(raises);
        Assert.All(Enumerable.Range(0, keys.Length), i => Assert.Equal(StoreStatus.Stored, raises[i].Status));
        bool[] onVictim = [.. keys.Select(k => store.GetServer(k) == b.Endpoint)];
        Assert.InRange(onVictim.Count(v => v), 30, 200);

        b.Kill();
        var clock = Stopwatch.StartNew();
        int rounds = 0;
        while (!store.IsCircuitOpen(b.Endpoint) && clock.Elapsed < Bound && rounds++ < 50)
        {
            StoreBatch reads = await ReadAllAsync(store, keys);
            for (int i = 0; i < keys.Length; i++)
            {
                if (onVictim[i])
                {
                    Assert.Equal(StoreStatus.Unavailable, reads[i].Status);
                    Assert.Contains(b.Address, reads[i].Error!.Message, StringComparison.Ordinal);
                }
                else
                {
                    Assert.Equal((StoreStatus.Hit, (2L * i) + 1), (reads[i].Status, reads[i].Value));
                }
            }
        }

        Assert.True(store.IsCircuitOpen(b.Endpoint), "the breaker of the killed node did not open");
        Assert.False(store.IsCircuitOpen(a.Endpoint));
        StoreResult failFast = Single(store, Read(keys[Array.IndexOf(onVictim, true)]));
        Assert.Equal(StoreStatus.Unavailable, failFast.Status);
        Assert.Contains("circuit breaker open", failFast.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(StoreStatus.NotStored, Single(store, Raise(keys[Array.IndexOf(onVictim, false)], 1)).Status);

        // A write of a down node's key is unavailable, and lands nowhere else: keys are never rehashed.
        string orphan = keys[Array.IndexOf(onVictim, true)];
        Assert.Equal(StoreStatus.Unavailable, Single(store, Raise(orphan, 999)).Status);
        Assert.Equal("EN\r\n", a.Raw($"mg {orphan} v\r\n"));
        Assert.Equal("EN\r\n", c.Raw($"mg {orphan} v\r\n"));
        Assert.True(metrics.Get("breaker.opened", b.Address) >= 1);
        Assert.True(metrics.Get("errors", b.Address) >= onVictim.Count(v => v));
        Assert.Equal(0, metrics.Get("errors", a.Address));
        Assert.True(Logged(log, $"memcached at {b.Address} is down: its circuit breaker opened after 2 consecutive failures"));

        b.Start();
        bool recovered = await EventuallyAsync(
            async () =>
            {
                StoreBatch reads = await ReadAllAsync(store, keys);
                var victims = Enumerable.Range(0, keys.Length).Where(i => onVictim[i]).Select(i => reads[i].Status).Distinct().ToList();
                Assert.DoesNotContain(StoreStatus.Hit, victims); // The restarted node is empty: nothing old can come back.
                return victims.SequenceEqual([StoreStatus.Miss]);
            },
            Bound);
        Assert.True(recovered, "the restarted node was not used again");
        Assert.False(store.IsCircuitOpen(b.Endpoint));
        Assert.True(Logged(log, $"memcached at {b.Address} is back: its circuit breaker closed."));

        await store.ExecuteAsync(raises);
        StoreBatch after = await ReadAllAsync(store, keys);
        Assert.All(Enumerable.Range(0, keys.Length), i => Assert.Equal((StoreStatus.Hit, (2L * i) + 1), (after[i].Status, after[i].Value)));
    }

    [Fact]
    public async Task After_a_restart_every_stored_token_is_a_miss_never_a_hit_of_the_old_value()
    {
        using var server = new MemcachedServer();
        using MemcachedStore store = Store(server.Address, o => o.CircuitBreakerThreshold = 1000);
        string prefix = UniquePrefix();
        string[] keys = [.. Enumerable.Range(0, 200).Select(i => $"{prefix}{i}")];
        var raises = new StoreBatch();
        foreach (string key in keys)
        {
            raises.Add(Raise(key, 41));
        }

        store.Execute(raises);

        // Readers keep going while the server restarts; a read that starts after the restart must never hit.
        long restartedAt = long.MaxValue;
        using var stop = new CancellationTokenSource();
        Task<int>[] readers = [.. Enumerable.Range(0, 2).Select(r => Task.Run(async () =>
        {
            int reads = 0;
            while (!stop.IsCancellationRequested && reads < 10_000)
            {
                long started = Stopwatch.GetTimestamp();
                StoreBatch batch = await ReadAllAsync(store, keys, async: r == 0);
                reads++;
                for (int i = 0; i < keys.Length; i++)
                {
                    if (started > Volatile.Read(ref restartedAt))
                    {
                        Assert.True(batch[i].Status is StoreStatus.Miss or StoreStatus.Unavailable, $"{batch[i].Status} {batch[i].Value} after the restart");
                    }
                    else
                    {
                        Assert.True(batch[i].Status is StoreStatus.Hit or StoreStatus.Miss or StoreStatus.Unavailable);
                        Assert.True(batch[i].Status != StoreStatus.Hit || batch[i].Value == 41);
                    }
                }

                await Task.Delay(5);
            }

            return reads;
        }))];

        await Task.Delay(100);
        server.Restart();
        Volatile.Write(ref restartedAt, Stopwatch.GetTimestamp());
        await Task.Delay(300);
        await stop.CancelAsync();
        Assert.All(await Task.WhenAll(readers), reads => Assert.True(reads > 1));

        Assert.True(await EventuallyAsync(
            async () => (await ReadAllAsync(store, keys)) is var batch && Enumerable.Range(0, keys.Length).All(i => batch[i].Status == StoreStatus.Miss),
            Bound));

        // The protocol re-validates through the database: the first reader of each key gets the lease.
        var leases = new StoreBatch();
        foreach (string key in keys)
        {
            leases.Add(LeaseRead(key));
        }

        store.Execute(leases);
        Assert.All(Enumerable.Range(0, keys.Length), i => Assert.Equal(StoreStatus.LeaseWon, leases[i].Status));
    }

    [Fact]
    public async Task Evicted_tokens_read_as_misses_never_as_stale_hits()
    {
        using MemcachedServer server = MemcachedServer.Create(memoryMb: 2);
        using MemcachedStore store = Store(server.Address);
        string prefix = UniquePrefix();
        string[] tokens = [.. Enumerable.Range(0, 2000).Select(i => $"{prefix}tok{i}")];

        // Version 1 committed, then version 2: an eviction must never bring version 1 back.
        foreach (long token in new[] { 3L, 5L })
        {
            var raises = new StoreBatch();
            foreach (string key in tokens)
            {
                raises.Add(Raise(key, token));
            }

            await store.ExecuteAsync(raises);
            Assert.All(Enumerable.Range(0, tokens.Length), i => Assert.Equal(StoreStatus.Stored, raises[i].Status));
        }

        // Flood with filler of the same size until memcached has evicted well over its capacity (bounded).
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < 100 && clock.Elapsed < Bound && server.Stat("evictions") < 40_000; round++)
        {
            var filler = new StoreBatch();
            for (int i = 0; i < 1000; i++)
            {
                filler.Add(Add($"{prefix}fill{round}:{i}", SharedEntities.Protocol.SharedToken.Clean(i).Value));
            }

            await store.ExecuteAsync(filler);
        }

        Assert.True(server.Stat("evictions") >= 40_000, $"only {server.Stat("evictions")} evictions");
        StoreBatch reads = await ReadAllAsync(store, tokens);
        int misses = 0;
        for (int i = 0; i < tokens.Length; i++)
        {
            Assert.True(reads[i].Status is StoreStatus.Miss or StoreStatus.Hit, $"{reads[i].Status}: {reads[i].Error}");
            if (reads[i].Status == StoreStatus.Hit)
            {
                Assert.Equal(5L, reads[i].Value);
            }
            else
            {
                misses++;
            }
        }

        Assert.True(misses > tokens.Length / 2, $"only {misses} of {tokens.Length} tokens were evicted");
    }

    private static async Task<StoreBatch> ReadAllAsync(MemcachedStore store, string[] keys, bool async = true)
    {
        var batch = new StoreBatch();
        foreach (string key in keys)
        {
            batch.AddRead(key);
        }

        await RunAsync(store, batch, async);
        return batch;
    }
}
