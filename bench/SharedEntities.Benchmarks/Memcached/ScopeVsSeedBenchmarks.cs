using BenchmarkDotNet.Attributes;
using SharedEntities.InMemory;
using SharedEntities.Memcached;

namespace SharedEntities.Benchmarks.Memcached;

/// <summary>
/// A scope that reads two shared properties of each of 100 entities, on one memcached server: through SharedEntities
/// (one batched check, one round trip) beside the seed recipe's protocol ported literally (one <c>get</c> per attribute
/// read: 200 round trips). Same server, same entities already in memory, nobody writing, so neither side reloads.
/// The synchronous scope checks on first touch (a getter cannot await); the asynchronous one awaits
/// <see cref="FreshScope.CheckAsync(IEnumerable{ISharedEntity}, CancellationToken)"/> first, as async code should.
/// Round trips per scope are counted in the global setup and printed to the log.
/// </summary>
/// <example>dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*ScopeVsSeed*'</example>
public class ScopeVsSeedBenchmarks
{
    private const int Entities = 100;

    private LocalMemcached _server = null!;
    private MemcachedStore _store = null!;
    private Coherence _coherence = null!;
    private ScopeSheet[] _sheets = null!;
    private SeedProtocolClient _seed = null!;
    private string[] _seedKeys = null!;

    [GlobalSetup]
    public void Setup()
    {
        _server = new LocalMemcached();
        _store = new MemcachedStore(new MemcachedClientOptions { Servers = _server.Address });
        var database = new InMemoryEntityDatabase();
        for (int id = 0; id < Entities; id++)
        {
            database.Insert(new ScopeSheet { Id = id, Version = 1, Title = $"sheet {id}", Rows = id });
        }

        _coherence = new Coherence(_store);
        InMemoryEntityConnection connection = database.Connect(_coherence);
        _sheets = [.. Enumerable.Range(0, Entities).Select(id => connection.Find<ScopeSheet>(id)!)];
        SharedEntitiesScope(); // fills every token

        _seed = new SeedProtocolClient(_server.Port);
        _seedKeys = [.. Enumerable.Range(0, Entities).Select(id => $"ScopeSheet{id}")];
        foreach (string key in _seedKeys)
        {
            _seed.Set(key, 0); // the recipe's "first time we are called"
        }

        long storeTrips = RoundTrips.Count(() => SharedEntitiesScope());
        long before = _seed.RoundTrips;
        SeedProtocolScope();
        Console.WriteLine($"// RoundTrips per scope: SharedEntities={storeTrips} seed={_seed.RoundTrips - before}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _seed.Dispose();
        _coherence.Dispose();
        _store.Dispose();
        _server.Dispose();
    }

    [Benchmark(Baseline = true, Description = "seed protocol: one get per attribute read")]
    public long SeedProtocolScope()
    {
        long sum = 0;
        for (int i = 0; i < _sheets.Length; i++)
        {
            // SharedObject.__getattribute__ calls _use() before each shared attribute.
            _seed.Use(_seedKeys[i], serial: 0);
            sum += _sheets[i].TitleUnchecked.Length;
            _seed.Use(_seedKeys[i], serial: 0);
            sum += _sheets[i].RowsUnchecked;
        }

        return sum;
    }

    [Benchmark(Description = "SharedEntities: a scope, one batched check")]
    public long SharedEntitiesScope()
    {
        using FreshScope scope = _coherence.BeginScope();
        long sum = 0;
        foreach (ScopeSheet sheet in _sheets)
        {
            scope.Track(sheet);
        }

        foreach (ScopeSheet sheet in _sheets)
        {
            sum += sheet.Title.Length;
            sum += sheet.Rows;
        }

        return sum;
    }

    [Benchmark(Description = "SharedEntities: a scope, await CheckAsync, then read")]
    public async Task<long> SharedEntitiesScopeAsync()
    {
        await using FreshScope scope = _coherence.BeginScope();
        await scope.CheckAsync(_sheets);
        long sum = 0;
        foreach (ScopeSheet sheet in _sheets)
        {
            sum += sheet.Title.Length;
            sum += sheet.Rows;
        }

        return sum;
    }
}

[SharedEntity]
public partial class ScopeSheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }

    public partial int Rows { get; set; }

    /// <summary>The values as the seed's objects hold them: plain fields, checked by the seed client instead.</summary>
    internal string TitleUnchecked => (string)((ISharedEntity)this).GetSharedValue(0)!;

    internal int RowsUnchecked => (int)((ISharedEntity)this).GetSharedValue(1)!;
}
