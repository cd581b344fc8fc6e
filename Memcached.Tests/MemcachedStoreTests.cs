using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>The store against one real memcached: pipelines, TTLs, keys, leases and concurrency.</summary>
public sealed class MemcachedStoreTests(MemcachedServer server) : IClassFixture<MemcachedServer>
{
    private readonly string _prefix = UniquePrefix();

    public static TheoryData<int, bool> PipelineSizes => new() { { 1, false }, { 1, true }, { 100, false }, { 100, true }, { 10_000, false }, { 10_000, true } };

    [Theory]
    [MemberData(nameof(PipelineSizes))]
    public async Task A_batch_of_n_keys_is_one_round_trip_per_step(int n, bool async)
    {
        using var metrics = new MetricsRecorder();
        using MemcachedStore store = Store(server.Address);
        string[] keys = [.. Enumerable.Range(0, n).Select(i => $"{_prefix}{n}:{async}:{i}")];

        var adds = new StoreBatch();
        foreach (string key in keys.Where((_, i) => i % 2 == 0))
        {
            adds.Add(Add(key, 2L * key.Length));
        }

        await RunAsync(store, adds, async);
        Assert.All(Enumerable.Range(0, adds.Count), i => Assert.Equal(StoreStatus.Stored, adds[i].Status));

        long roundTrips = metrics.Get("round_trips", server.Address);
        var reads = new StoreBatch();
        foreach (string key in keys)
        {
            reads.AddRead(key);
        }

        await RunAsync(store, reads, async);
        Assert.Equal(roundTrips + 1, metrics.Get("round_trips", server.Address));
        for (int i = 0; i < n; i++)
        {
            StoreResult result = reads[i];
            if (i % 2 == 0)
            {
                Assert.Equal((StoreStatus.Hit, 2L * keys[i].Length), (result.Status, result.Value));
            }
            else
            {
                Assert.Equal(StoreStatus.Miss, result.Status);
            }
        }
    }

    [Fact]
    public void Ttls_are_whole_seconds_rounded_up_and_long_ones_become_absolute()
    {
        using MemcachedStore store = Store(server.Address);
        Single(store, Raise(_prefix + "short", 1, ttlSeconds: 100.2));
        Single(store, Raise(_prefix + "none", 1, ttlSeconds: 0));
        Single(store, Raise(_prefix + "long", 1, ttlSeconds: TimeSpan.FromDays(40).TotalSeconds));
        Single(store, LeaseRead(_prefix + "lease", seconds: 7.5));

        Assert.Matches(@"^HD t(100|101)\r\n$", server.Raw($"mg {_prefix}short t\r\n"));
        Assert.Equal("HD t-1\r\n", server.Raw($"mg {_prefix}none t\r\n"));
        long remaining = long.Parse(server.Raw($"mg {_prefix}long t\r\n")[4..^2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(remaining, TimeSpan.FromDays(40).TotalSeconds - 5, TimeSpan.FromDays(40).TotalSeconds + 1);
        Assert.Matches(@"^HD t(7|8) Z\r\n$", server.Raw($"mg {_prefix}lease t\r\n"));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("tab\there")]
    [InlineData("new\nline")]
    [InlineData("nul\0")]
    [InlineData("caf\u00e9")]
    [InlineData("")]
    public async Task Odd_keys_are_refused_before_anything_is_sent(string key)
    {
        using var fake = new ScriptedServer((client, _) => ScriptedServer.ServeWell(client));
        using MemcachedStore store = Store(fake.Address);
        var batch = new StoreBatch();
        batch.AddRead(_prefix + "fine");
        batch.Add(new StoreOperation(StoreOperationKind.Read, _prefix + key));
        if (key.Length == 0)
        {
            batch.Clear();
            Assert.Throws<ArgumentException>(() => batch.Add(new StoreOperation(StoreOperationKind.Read, key)));
            return;
        }

        Assert.Throws<ArgumentException>(() => store.Execute(batch));
        await Assert.ThrowsAsync<ArgumentException>(async () => await store.ExecuteAsync(batch));
        Assert.Equal(StoreStatus.Pending, batch[0].Status);
        Assert.Equal(0, fake.Connections);
    }

    [Fact]
    public void Keys_longer_than_250_bytes_are_refused_and_250_is_accepted()
    {
        using MemcachedStore store = Store(server.Address);
        string longest = _prefix + new string('k', 250 - _prefix.Length);
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(longest, 3)).Status);
        Assert.Equal(3L, Single(store, Read(longest)).Value);
        ArgumentException error = Assert.Throws<ArgumentException>(() => Single(store, Read(longest + "k")));
        Assert.Contains("250", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancellation_throws_and_the_store_keeps_working()
    {
        using MemcachedStore store = Store(server.Address);
        var batch = new StoreBatch();
        batch.AddRead(_prefix + "c");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await store.ExecuteAsync(batch, cancelled.Token));
        await store.ExecuteAsync(batch);
        Assert.Equal(StoreStatus.Miss, batch[0].Status);
    }

    [Fact]
    public async Task One_lease_winner_the_others_lose_then_the_fill_is_a_hit_for_all()
    {
        using MemcachedStore store = Store(server.Address);
        string key = _prefix + "contended";
        const int readers = 16;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<StoreResult>[] reads = [.. Enumerable.Range(0, readers).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            var batch = new StoreBatch();
            batch.Add(LeaseRead(key));
            await store.ExecuteAsync(batch);
            return batch[0];
        }))];
        start.SetResult();
        StoreResult[] results = await Task.WhenAll(reads);
        Assert.All(results, r => Assert.False(r.IsFailure, $"{r.Status}: {r.Error}"));

        StoreResult winner = Assert.Single(results, r => r.Status == StoreStatus.LeaseWon);
        Assert.Equal(readers - 1, results.Count(r => r.Status == StoreStatus.LeaseLost));
        Assert.Equal(StoreStatus.Stored, Single(store, Fill(key, 21, winner.Cas)).Status);
        Assert.Equal(StoreStatus.NotStored, Single(store, Fill(key, 23, winner.Cas)).Status);
        Assert.All(Enumerable.Range(0, 4), _ => Assert.Equal((StoreStatus.Hit, 21L), (Single(store, LeaseRead(key)) is var r ? (r.Status, r.Value) : default)));
    }

    [Fact]
    public async Task Concurrent_raises_only_ever_go_up_and_end_at_the_maximum()
    {
        using MemcachedStore store = Store(server.Address, o => o.MaxCasAttempts = 1000);
        string key = _prefix + "raised";
        const int writers = 8;
        const int raisesEach = 40;
        long[][] values = [.. Enumerable.Range(0, writers).Select(w => Enumerable.Range(0, raisesEach).Select(i => (long)Random.Shared.Next(1, 1_000_000)).ToArray())];

        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            foreach (long value in values[w])
            {
                var batch = new StoreBatch();
                batch.Add(Raise(key, value));
                batch.AddRead(key);
                if (w % 2 == 0)
                {
                    await store.ExecuteAsync(batch);
                }
                else
                {
                    store.Execute(batch);
                }

                StoreResult raised = batch[0];
                Assert.True(raised.Status is StoreStatus.Stored or StoreStatus.NotStored, $"{raised.Status}: {raised.Error}");
                Assert.True(raised.Value >= value, $"raise to {value} reported {raised.Status} {raised.Value}");
                Assert.True(batch[1].Value >= value, $"after raising to {value} the read saw {batch[1].Value}");
            }
        })));

        Assert.Equal(values.SelectMany(v => v).Max(), Single(store, Read(key)).Value);
    }

    [Fact]
    public async Task Parallel_increments_are_exact()
    {
        using MemcachedStore store = Store(server.Address);
        string key = _prefix + "counter";
        Assert.Equal(StoreStatus.Stored, Single(store, Add(key, 1000)).Status);
        const int threads = 8;
        const int incrementsEach = 250;
        var seen = new System.Collections.Concurrent.ConcurrentBag<long>();
        await Task.WhenAll(Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; i < incrementsEach; i++)
                {
                    StoreResult result = Single(store, Increment(key));
                    Assert.Equal(StoreStatus.Stored, result.Status);
                    seen.Add(result.Value);
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)));

        Assert.Equal(1000L + (threads * incrementsEach), Single(store, Read(key)).Value);
        Assert.Equal(Enumerable.Range(1001, threads * incrementsEach).Select(i => (long)i), seen.Order());
    }

    [Fact]
    public async Task A_disposed_store_refuses_work_and_closes_its_connections()
    {
        MemcachedStore store = Store(server.Address);
        Assert.Equal(StoreStatus.Miss, Single(store, Read(_prefix + "d")).Status);
        Assert.Equal(1, store.Nodes[0].IdleConnections);
        await store.DisposeAsync();
        Assert.Equal(0, store.Nodes[0].IdleConnections);
        Assert.Throws<ObjectDisposedException>(() => Single(store, Read(_prefix + "d")));
        store.Dispose();
    }

    [Fact]
    public void A_value_this_store_did_not_write_is_reported_damaged_and_replaced_only_by_cas()
    {
        using MemcachedStore store = Store(server.Address);
        string key = _prefix + "foreign";
        Assert.Equal("HD\r\n", server.Raw($"ms {key} 5\r\nhello\r\n"));
        StoreResult read = Single(store, Read(key));
        Assert.Equal(StoreStatus.Damaged, read.Status);
        Assert.NotEqual(0UL, read.Cas);

        // A publish never replaces it; a fill with another CAS neither; a fill with the CAS read does.
        Assert.Equal(StoreStatus.NotStored, Single(store, new StoreOperation(StoreOperationKind.Publish, key, 9, Expected: 8)).Status);
        Assert.Equal(StoreStatus.NotStored, Single(store, new StoreOperation(StoreOperationKind.Fill, key, 9, Cas: read.Cas + 1)).Status);
        Assert.Contains("hello", server.Raw($"mg {key} v\r\n"), StringComparison.Ordinal);
        Assert.Equal(StoreStatus.Stored, Single(store, new StoreOperation(StoreOperationKind.Fill, key, 9, Cas: read.Cas)).Status);
        Assert.Equal(9L, Single(store, Read(key)).Value);

        // A raise counts a damaged value as below everything, as a miss.
        Assert.Equal("HD\r\n", server.Raw($"ms {key} 2\r\n-5\r\n"));
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(key, 5)).Status);
        Assert.Equal(5L, Single(store, Read(key)).Value);
        Assert.Equal(StoreStatus.Miss, Single(store, Read(_prefix + "next")).Status);
    }

    [Fact]
    public void Counters_report_hits_misses_leases_and_commands()
    {
        using var metrics = new MetricsRecorder();
        using MemcachedStore store = Store(server.Address);
        var batch = new StoreBatch();
        batch.Add(Raise(_prefix + "m1", 3));
        store.Execute(batch);
        string[] names = ["commands", "round_trips", "hits", "misses", "leases.won", "leases.lost", "errors", "timeouts", "breaker.opened"];
        long[] before = [.. names.Select(n => metrics.Get(n, server.Address))];
        batch.Clear();
        batch.AddRead(_prefix + "m1");
        batch.AddRead(_prefix + "m2");
        batch.Add(LeaseRead(_prefix + "m3"));
        batch.Add(LeaseRead(_prefix + "m3")); // The same key again: reads keep their order within one pipeline.
        store.Execute(batch);
        long[] delta = [.. names.Select((n, i) => metrics.Get(n, server.Address) - before[i])];
        Assert.Equal([4L, 1, 1, 3, 1, 1, 0, 0, 0], delta);

        // A write and a read of the same key need two round trips, so that the read sees the write.
        batch.Clear();
        batch.Add(Raise(_prefix + "m4", 9));
        batch.AddRead(_prefix + "m4");
        long roundTrips = metrics.Get("round_trips", server.Address);
        store.Execute(batch);
        Assert.Equal(9L, batch[1].Value);
        Assert.Equal(roundTrips + 3, metrics.Get("round_trips", server.Address)); // mg + ms (add) for the raise, then mg
    }
}
