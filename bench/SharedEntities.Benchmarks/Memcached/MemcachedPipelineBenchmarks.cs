using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using SharedEntities.Memcached;
using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Benchmarks.Memcached;

/// <summary>
/// Reads of N tokens through <see cref="MemcachedStore"/> (one pipelined round trip) beside the raw-socket baseline
/// that sends the same <c>mg</c> pipeline and only waits for its end. N = 1 is one key per round trip. The ratio
/// column compares each store path with the baseline of the same kind (sync with sync, async with async); keys/s is
/// N divided by the median. Each run starts its own memcached on a free loopback port, with one worker thread: memcached
/// serves each connection on one of its worker threads, so with several the raw socket and the store would be served
/// by different threads, whose luck on a shared machine differs (two raw sockets on connections served by different
/// threads differed by up to 11% in one run; served by one thread, within 6%).
/// </summary>
/// <example>dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*Memcached*'</example>
[Config(typeof(Config))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class MemcachedPipelineBenchmarks
{
    private LocalMemcached? _server;
    private MemcachedStore? _store;
    private RawMetaPipeline? _raw;
    private RawMetaPipeline? _control;
    private readonly StoreBatch _batch = new();

    [Params(1, 10, 100, 1000)]
    public int Keys { get; set; }

    /// <summary>Run memcached on the last CPU only (the driver's <c>--pin</c>, with the driver on the others).</summary>
    public bool PinServer { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _server = new LocalMemcached(threads: 1, cpu: PinServer ? CpuPinning.ServerCpu : null);
        _store = new MemcachedStore(new MemcachedClientOptions { Servers = _server.Address });
        string[] keys = [.. Enumerable.Range(0, Keys).Select(i => StoreKeys.For("bench:", "Sheet", i))];
        var seed = new StoreBatch();
        foreach (string key in keys)
        {
            seed.Add(new StoreOperation(StoreOperationKind.AddIfAbsent, key, SharedToken.Clean(1234).Value));
            _batch.AddRead(key);
        }

        _store.Execute(seed);
        _store.Execute(_batch);
        for (int i = 0; i < _batch.Count; i++)
        {
            if (_batch[i].Status != StoreStatus.Hit)
            {
                throw new InvalidOperationException($"Seeding failed: {_batch[i].Status} {_batch[i].Error}");
            }
        }

        _raw = new RawMetaPipeline(_server.Port, keys);
        _control = new RawMetaPipeline(_server.Port, keys);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _raw?.Dispose();
        _control?.Dispose();
        _store?.Dispose();
        _server?.Dispose();
    }

    [Benchmark(Baseline = true, Description = "raw socket mg pipeline")]
    [BenchmarkCategory("sync")]
    public int RawSync() => _raw!.Run();

    /// <summary>The baseline again on a second connection: the driver's control pair, which shows the method's own noise.</summary>
    public int ControlSync() => _control!.Run();

    /// <summary>The same, asynchronously.</summary>
    public ValueTask<int> ControlAsync() => _control!.RunAsync();

    [Benchmark(Description = "MemcachedStore.Execute")]
    [BenchmarkCategory("sync")]
    public StoreStatus StoreSync()
    {
        _store!.Execute(_batch);
        return _batch[0].Status;
    }

    [Benchmark(Baseline = true, Description = "raw socket mg pipeline")]
    [BenchmarkCategory("async")]
    public ValueTask<int> RawAsync() => _raw!.RunAsync();

    [Benchmark(Description = "MemcachedStore.ExecuteAsync")]
    [BenchmarkCategory("async")]
    public async Task<StoreStatus> StoreAsync()
    {
        await _store!.ExecuteAsync(_batch).ConfigureAwait(false);
        return _batch[0].Status;
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            // A short job: the machine is shared, so medians of a few iterations say more than long means.
            AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(15).WithId("short"));
            AddColumn(StatisticColumn.Median, new KeysPerSecondColumn());
        }
    }

    /// <summary>Keys per second: the Keys parameter over the median time of one invocation.</summary>
    private sealed class KeysPerSecondColumn : IColumn
    {
        public string Id => nameof(KeysPerSecondColumn);

        public string ColumnName => "keys/s";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Keys checked per second (Keys / Median)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            double? medianNs = summary[benchmarkCase]?.ResultStatistics?.Median;
            object? keys = benchmarkCase.Parameters["Keys"];
            return medianNs is > 0 && keys is int n
                ? (n / (medianNs.Value / 1e9)).ToString("N0", System.Globalization.CultureInfo.InvariantCulture)
                : "-";
        }

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}
