using System.Diagnostics;
using System.Globalization;
using SharedEntities.Benchmarks.EntityFrameworkCore;
using SharedEntities.Benchmarks.Memcached;

namespace SharedEntities.Benchmarks;

/// <summary>
/// The whole-process driver: runs the memcached, EF Core write and per-request read comparisons as plain loops in this process, without BenchmarkDotNet,
/// for a fixed time each, alternating the baseline and the measured side in short rounds so that both see the same
/// machine load. Prints operations per second and the ratio of each pair.
/// </summary>
/// <example>dotnet run -c Release --project bench/SharedEntities.Benchmarks -- driver --seconds 10 [--pin]</example>
internal static class Driver
{
    private const int Rounds = 10;
    private const long MaxOperationsPerRound = 50_000_000;

    private static long s_concurrentRequests;

    public static async Task<int> RunAsync(string[] args)
    {
        double seconds = 10;
        bool pin = false;
        string[] groups = ["pipeline", "scope", "ef-write", "per-request"];
        string[] only = groups;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--seconds" && i + 1 < args.Length && double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s is > 0 and <= 600)
            {
                seconds = s;
                i++;
            }
            else if (args[i] == "--pin" && CpuPinning.ServerCpu is not null)
            {
                pin = true;
            }
            else if (args[i] == "--only" && i + 1 < args.Length && args[i + 1].Split(',') is var chosen && chosen.All(groups.Contains))
            {
                only = chosen;
                i++;
            }
            else
            {
                Console.Error.WriteLine("usage: driver [--seconds N] [--pin] [--only GROUP,...]   (N: 0 < N <= 600, the time of each pair; default 10." +
                    " --pin: memcached on the last CPU, the pipelined-read loops on the others; Linux with taskset and 2+ CPUs." +
                    " GROUP: pipeline, scope, ef-write, per-request; default all)");
                return 2;
            }
        }

        var round = TimeSpan.FromSeconds(seconds / Rounds / 2);
        Console.WriteLine(Invariant($"driver: {seconds} s per pair, {Rounds} alternating rounds{(pin ? ", pipelined reads pinned" : "")}; load average {LoadAverage()}"));
        Console.WriteLine("pair | baseline ops/s | measured ops/s | measured / baseline");
        foreach (int keys in only.Contains("pipeline") ? new[] { 10, 100, 1000 } : [])
        {
            var pipeline = new MemcachedPipelineBenchmarks { Keys = keys, PinServer = pin };
            pipeline.Setup();
            if (pin)
            {
                CpuPinning.PinThisProcess(CpuPinning.ClientCpus);
            }

            try
            {
                Report($"{keys} keys, sync: raw socket vs MemcachedStore (keys/s)", keys,
                    await CompareAsync(round, () => Sync(() => pipeline.RawSync()), () => Sync(() => pipeline.StoreSync())));
                Report($"{keys} keys, async: raw socket vs MemcachedStore (keys/s)", keys,
                    await CompareAsync(round, async () => await pipeline.RawAsync(), async () => await pipeline.StoreAsync()));
                if (keys == 1000)
                {
                    // The control: the baseline against itself on a second connection; its distance from 1.00 is the method's noise.
                    Report($"{keys} keys, sync: raw socket vs raw socket on a second connection (control, keys/s)", keys,
                        await CompareAsync(round, () => Sync(() => pipeline.RawSync()), () => Sync(() => pipeline.ControlSync())));
                    Report($"{keys} keys, async: raw socket vs raw socket on a second connection (control, keys/s)", keys,
                        await CompareAsync(round, async () => await pipeline.RawAsync(), async () => await pipeline.ControlAsync()));
                }
            }
            finally
            {
                if (pin)
                {
                    CpuPinning.UnpinThisProcess();
                }

                pipeline.Cleanup();
            }
        }

        if (only.Contains("scope"))
        {
            await ScopesAsync(round);
        }

        if (only.Contains("ef-write"))
        {
            await EfWritesAsync(round);
        }

        if (only.Contains("per-request"))
        {
            await PerRequestReadsAsync(round);
        }

        Console.WriteLine(Invariant($"load average at the end: {LoadAverage()}"));
        return 0;
    }

    private static async Task ScopesAsync(TimeSpan round)
    {
        var scope = new ScopeVsSeedBenchmarks();
        scope.Setup();
        try
        {
            Report("100-entity scope, sync: seed protocol vs SharedEntities (scopes/s)", 1,
                await CompareAsync(round, () => Sync(() => scope.SeedProtocolScope()), () => Sync(() => scope.SharedEntitiesScope())));
            Report("100-entity scope, async: seed protocol vs SharedEntities (scopes/s)", 1,
                await CompareAsync(round, () => Sync(() => scope.SeedProtocolScope()), async () => await scope.SharedEntitiesScopeAsync()));
            Console.WriteLine(Invariant($"round trips per scope: SharedEntities={RoundTrips.Count(() => scope.SharedEntitiesScope())}, seed=200 (one get per attribute read)"));
        }
        finally
        {
            scope.Cleanup();
        }
    }

    private static async Task EfWritesAsync(TimeSpan round)
    {
        var ef = new EfWriteBenchmarks(); // PostgreSQL and memcached of its own
        ef.Setup();
        try
        {
            Report("committed EF Core write: plain SaveChangesAsync vs plain SaveChangesAsync in a transaction (writes/s)", 1,
                await CompareAsync(round, async () => await ef.PlainWrite(), async () => await ef.PlainWriteInTransaction()));
            Report("committed EF Core write: plain SaveChangesAsync vs SharedEntities (writes/s)", 1,
                await CompareAsync(round, async () => await ef.PlainWrite(), async () => await ef.SharedWrite()));
            Report("committed EF Core write: plain SaveChangesAsync vs SharedEntities, PublishInBackground (writes/s)", 1,
                await CompareAsync(round, async () => await ef.PlainWrite(), async () => await ef.SharedWritePublishingInBackground()));
            Report("committed EF Core write: plain SaveChangesAsync vs SharedEntities checked read + write (writes/s)", 1,
                await CompareAsync(round, async () => await ef.PlainWrite(), async () => await ef.SharedReadThenWrite()));
        }
        finally
        {
            ef.Cleanup();
        }
    }

    // A new context per request reading K rows by key (PerRequestReadBenchmarks), on both setups: requests per second
    // against plain EF Core, the cost of each request, 16 concurrent flows, and the bytes of a cached row.
    private static async Task PerRequestReadsAsync(TimeSpan round)
    {
        foreach (string setup in new[] { "postgres", "sqlite" })
        {
            foreach (int k in new[] { 1, 10, 100 })
            {
                var reads = new PerRequestReadBenchmarks { Setup = setup, K = k };
                reads.GlobalSetup();
                try
                {
                    string what = Invariant($"{setup}, K = {k}");
                    Report($"{what}: plain EF Core vs SharedEntities from the entity cache (requests/s)", 1,
                        await CompareAsync(round, async () => await reads.Plain(), async () => await reads.SharedFromCache()));
                    Report($"{what}: plain EF Core vs SharedEntities ordinary query (requests/s)", 1,
                        await CompareAsync(round, async () => await reads.Plain(), async () => await reads.SharedQuery()));
                    Report($"{what}: AsNoTracking vs SharedEntities from the entity cache (requests/s)", 1,
                        await CompareAsync(round, async () => await reads.PlainNoTracking(), async () => await reads.SharedFromCache()));
                    Report($"{what}: plain EF Core vs AsNoTracking (requests/s)", 1,
                        await CompareAsync(round, async () => await reads.Plain(), async () => await reads.PlainNoTracking()));
                    if (k == 10)
                    {
                        const int flows = 16;
                        Report($"{what}, {flows} concurrent flows: plain EF Core vs SharedEntities from the entity cache (requests/s)", 1,
                            await CompareAsync(round, () => Concurrently(flows, n => reads.PlainAsync(reads.KeysOf(n), tracking: true)), () => Concurrently(flows, n => reads.SharedFromCacheAsync(reads.KeysOf(n))), flows));
                        Console.WriteLine(Invariant($"{setup}: {await reads.BytesPerCachedRowAsync():N0} bytes per cached row (1,000 rows of one long version and a short title)"));
                    }
                }
                finally
                {
                    reads.Cleanup();
                }
            }
        }
    }

    // One operation of the driver = one request on each of `flows` concurrent flows (so ops/s × flows = requests/s).
    private static async ValueTask Concurrently(int flows, Func<long, Task<int>> request)
    {
        var tasks = new Task[flows];
        long first = Interlocked.Add(ref s_concurrentRequests, flows) - flows;
        for (int i = 0; i < flows; i++)
        {
            long n = first + i;
            tasks[i] = Task.Run(() => request(n));
        }

        await Task.WhenAll(tasks);
    }

    /// <summary>Operations per second of each side, each run for <see cref="Rounds"/> rounds of <paramref name="round"/>, alternating.</summary>
    private static async Task<(double Baseline, double Measured)> CompareAsync(TimeSpan round, Func<ValueTask> baseline, Func<ValueTask> measured, int perOperation = 1)
    {
        await RunForAsync(TimeSpan.FromMilliseconds(200), baseline); // warm up both
        await RunForAsync(TimeSpan.FromMilliseconds(200), measured);
        long baselineOps = 0, measuredOps = 0;
        TimeSpan baselineTime = TimeSpan.Zero, measuredTime = TimeSpan.Zero;
        for (int i = 0; i < Rounds; i++)
        {
            (long ops, TimeSpan time) = await RunForAsync(round, baseline);
            baselineOps += ops;
            baselineTime += time;
            (ops, time) = await RunForAsync(round, measured);
            measuredOps += ops;
            measuredTime += time;
        }

        return (perOperation * baselineOps / baselineTime.TotalSeconds, perOperation * measuredOps / measuredTime.TotalSeconds);
    }

    private static async Task<(long Operations, TimeSpan Time)> RunForAsync(TimeSpan duration, Func<ValueTask> operation)
    {
        var clock = Stopwatch.StartNew();
        long operations = 0;
        while (clock.Elapsed < duration && operations < MaxOperationsPerRound)
        {
            await operation();
            operations++;
        }

        return (operations, clock.Elapsed);
    }

    private static ValueTask Sync(Action operation)
    {
        operation();
        return ValueTask.CompletedTask;
    }

    private static void Report(string pair, int perOperation, (double Baseline, double Measured) result) =>
        Console.WriteLine(Invariant($"{pair} | {result.Baseline * perOperation:N0} | {result.Measured * perOperation:N0} | {result.Measured / result.Baseline:0.00}"));

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
