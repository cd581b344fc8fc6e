using BenchmarkDotNet.Attributes;
using SharedEntities;
using SharedEntities.InMemory;
using SharedEntities.Stores;

namespace SharedEntities.Benchmarks;

/// <summary>
/// The cost of a generated getter: on its fast path (already checked in the current scope) against a plain
/// auto-property, and the first, checking read of a scope against a read outside any scope (the seed's per-read check).
/// Each fast-path benchmark reads 1,024 properties round-robin over 64 objects, so that a read costs what it costs in
/// a loop (no hoisting of one object's field) and the per-read figure is well above the timer's resolution.
/// Run: <c>dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*GetterBenchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
public class GetterBenchmarks
{
    private const int Objects = 64;
    private const int Reads = 1024;

    private readonly InMemorySharedStore _store = new();
    private PlainSheet[] _plain = null!;
    private BenchSheet[] _shared = null!;
    private BenchSheet _unscoped = null!;
    private Coherence _coherence = null!;
    private FreshScope _scope = null!;
    private long _batchesAfterSetup;
    private string? _lastRun;

    [GlobalSetup]
    public void Setup()
    {
        var database = new InMemoryEntityDatabase();
        for (int id = 0; id < Objects; id++)
        {
            database.Insert(new BenchSheet { Id = id, Version = 1, Title = $"sheet {id}" });
        }

        _coherence = new Coherence(_store);
        InMemoryEntityConnection connection = database.Connect(_coherence);
        _shared = [.. Enumerable.Range(0, Objects).Select(id => connection.Find<BenchSheet>(id)!)];
        _plain = [.. Enumerable.Range(0, Objects).Select(id => new PlainSheet { Id = id, Version = 1, Title = $"sheet {id}" })];
        _unscoped = database.Connect(new Coherence(_store)).Find<BenchSheet>(0)!; // a runtime with no scope open

        // The scope stays open for the whole run, on the benchmark thread: every fast-path read below stays local.
        _scope = _coherence.BeginScope();
        foreach (BenchSheet sheet in _shared)
        {
            _ = sheet.Title;
        }

        _batchesAfterSetup = _store.BatchCount;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _scope.Dispose();
        if (_store.BatchCount != _batchesAfterSetup && _lastRun == nameof(SharedFastPath))
        {
            throw new InvalidOperationException("The fast-path benchmark reached the store: the scope was not current on the benchmark thread.");
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Reads, Description = "plain auto-property read")]
    public int PlainProperty()
    {
        _lastRun = nameof(PlainProperty);
        PlainSheet[] sheets = _plain;
        int length = 0;
        for (int i = 0; i < Reads; i++)
        {
            length += sheets[i & (Objects - 1)].Title.Length;
        }

        return length;
    }

    [Benchmark(OperationsPerInvoke = Reads, Description = "shared property, fast path (checked in this scope)")]
    public int SharedFastPath()
    {
        _lastRun = nameof(SharedFastPath);
        BenchSheet[] sheets = _shared;
        int length = 0;
        for (int i = 0; i < Reads; i++)
        {
            length += sheets[i & (Objects - 1)].Title.Length;
        }

        return length;
    }

    [Benchmark(Description = "first read in a new scope (begin, one batched check, dispose)")]
    public string FirstReadInNewScope()
    {
        _lastRun = nameof(FirstReadInNewScope);
        using FreshScope scope = _coherence.BeginScope();
        return _shared[0].Title;
    }

    [Benchmark(Description = "read outside any scope (checks every read, as the seed did)")]
    public string ReadOutsideScope()
    {
        _lastRun = nameof(ReadOutsideScope);
        return _unscoped.Title;
    }
}

/// <summary>The same shape as <see cref="BenchSheet"/> with plain auto-properties.</summary>
public class PlainSheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public string Title { get; set; } = "";
}

[SharedEntity]
public partial class BenchSheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }
}
