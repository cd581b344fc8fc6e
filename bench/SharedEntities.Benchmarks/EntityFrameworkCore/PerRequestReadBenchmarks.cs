using System.Data.Common;
using BenchmarkDotNet.Attributes;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using SharedEntities.Benchmarks.Memcached;
using SharedEntities.EntityFrameworkCore;
using SharedEntities.Memcached;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Benchmarks.EntityFrameworkCore;

/// <summary>
/// The shape real servers have: a new <see cref="DbContext"/> per request that reads K rows by key and a property of
/// each. Plain EF Core (tracked, the baseline; and <c>AsNoTracking</c>) beside SharedEntities reading the same rows by
/// an ordinary query (which counts as checked) and by key from the process-wide entity cache. Nothing changes between
/// requests, so the cache serves every row once it is warm. <see cref="Setup"/> = <c>postgres</c> (a private
/// PostgreSQL 15 cluster and memcached, loopback) or <c>sqlite</c> (a SQLite file with the embedded store). The global
/// setup counts the database statements and store round trips of one request of each kind and prints them.
/// </summary>
/// <example>dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*PerRequest*'</example>
public class PerRequestReadBenchmarks
{
    public const int Rows = 1_000;

    private readonly StatementCounter _statements = new();
    private PostgresCluster? _postgres;
    private LocalMemcached? _memcached;
    private string? _folder;
    private ISharedStore _store = null!;
    private Coherence _coherence = null!;
    private DbContextOptions<PlainContext> _plainOptions = null!;
    private DbContextOptions<SharedContext> _sharedOptions = null!;
    private long _request;

    [Params("postgres", "sqlite")]
    public string Setup { get; set; } = "postgres";

    [Params(1, 10, 100)]
    public int K { get; set; } = 1;

    /// <summary>The runtime of the SharedEntities side (for the driver's memory figure).</summary>
    public Coherence Coherence => _coherence;

    /// <summary>Database statements run so far by every context of this benchmark.</summary>
    public long Statements => _statements.Count;

    [GlobalSetup]
    public void GlobalSetup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup()
    {
        _coherence.Dispose();
        (_store as IDisposable)?.Dispose();
        _memcached?.Dispose();
        NpgsqlConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();
        _postgres?.Dispose();
        if (_folder is not null)
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Benchmark(Baseline = true, Description = "plain EF Core: new context, tracked query by keys")]
    public Task<int> Plain() => PlainAsync(NextKeys(), tracking: true);

    [Benchmark(Description = "plain EF Core: new context, AsNoTracking query by keys")]
    public Task<int> PlainNoTracking() => PlainAsync(NextKeys(), tracking: false);

    [Benchmark(Description = "SharedEntities: new context and scope, ordinary query by keys (counts as checked)")]
    public Task<int> SharedQuery() => SharedQueryAsync(NextKeys());

    [Benchmark(Description = "SharedEntities: new context and scope, FindManySharedAsync (from the entity cache)")]
    public Task<int> SharedFromCache() => SharedFromCacheAsync(NextKeys());

    /// <summary>One plain request for <paramref name="keys"/>; returns the sum of the titles' lengths.</summary>
    public async Task<int> PlainAsync(int[] keys, bool tracking)
    {
        await using var context = new PlainContext(_plainOptions);
        IQueryable<PlainRow> rows = tracking ? context.Rows : context.Rows.AsNoTracking();
        int length = 0;
        foreach (PlainRow row in await rows.Where(r => keys.Contains(r.Id)).ToListAsync())
        {
            length += row.Title.Length;
        }

        return length;
    }

    /// <summary>One SharedEntities request for <paramref name="keys"/> through an ordinary query.</summary>
    public async Task<int> SharedQueryAsync(int[] keys)
    {
        await using FreshScope scope = _coherence.BeginScope();
        await using var context = new SharedContext(_sharedOptions);
        int length = 0;
        foreach (SharedRow row in await context.Rows.Where(r => keys.Contains(r.Id)).ToListAsync())
        {
            length += row.Title.Length;
        }

        return length;
    }

    /// <summary>One SharedEntities request for <paramref name="keys"/> by key, from the entity cache.</summary>
    public async Task<int> SharedFromCacheAsync(int[] keys)
    {
        await using FreshScope scope = _coherence.BeginScope();
        await using var context = new SharedContext(_sharedOptions);
        int length = 0;
        foreach (SharedRow row in await context.Rows.FindManySharedAsync(keys))
        {
            length += row.Title.Length;
        }

        return length;
    }

    /// <summary>The bytes the entity cache holds per row: emptied, refilled with every row by queries, measured.</summary>
    public async Task<double> BytesPerCachedRowAsync()
    {
        _coherence.Cache.Clear();
        long before = GC.GetTotalMemory(forceFullCollection: true);
        int[] all = [.. Enumerable.Range(1, Rows)];
        for (int i = 0; i < Rows; i += 100)
        {
            await SharedQueryAsync(all[i..(i + 100)]);
        }

        long after = GC.GetTotalMemory(forceFullCollection: true);
        return (after - before) / (double)_coherence.Cache.Count;
    }

    /// <summary>K keys for the <paramref name="request"/>-th request: each request asks for K rows the one before did not.</summary>
    public int[] KeysOf(long request)
    {
        var keys = new int[K];
        long start = request * K % Rows;
        for (int i = 0; i < K; i++)
        {
            keys[i] = (int)((start + i) % Rows) + 1;
        }

        return keys;
    }

    /// <summary>
    /// What one request of <paramref name="request"/> costs, warm: EF Core's database statements (counted by an
    /// interceptor), the entities for which the runtime went to the database itself (lease fills, version reads,
    /// reloads, repairs: its metrics), and memcached round trips.
    /// </summary>
    public async Task<(long Statements, long RuntimeReads, long RoundTrips)> CountAsync(Func<Task> request)
    {
        await request();
        long before = _statements.Count;
        long runtime = 0, trips = 0;
        runtime = await RoundTrips.CountAsync(
            async () => trips = await RoundTrips.CountAsync(request),
            "sharedentities.leases.won", "sharedentities.fallbacks", "sharedentities.reloads", "sharedentities.repairs");
        return (_statements.Count - before, runtime, trips);
    }

    private int[] NextKeys() => KeysOf(_request++);

    private async Task SetupAsync()
    {
        var plain = new DbContextOptionsBuilder<PlainContext>().AddInterceptors(_statements);
        var shared = new DbContextOptionsBuilder<SharedContext>().AddInterceptors(_statements);
        if (Setup == "postgres")
        {
            _postgres = new PostgresCluster();
            _memcached = new LocalMemcached();
            _store = new MemcachedStore(new MemcachedClientOptions { Servers = _memcached.Address });
            _coherence = new Coherence(_store);
            plain.UseNpgsql(_postgres.ConnectionString);
            shared.UseNpgsql(_postgres.ConnectionString).UseSharedEntities(_coherence);
        }
        else
        {
            _folder = Directory.CreateTempSubdirectory("se-bench-").FullName;
            string connectionString = $"Data Source={Path.Combine(_folder, "app.db")};Pooling=True";
            _store = new SqliteSharedStore(connectionString);
            _coherence = new Coherence(_store);
            plain.UseSqlite(connectionString);
            shared.UseSqlite(connectionString).UseSharedEntities(_coherence, SqliteDialect.Instance);
        }

        _plainOptions = plain.Options;
        _sharedOptions = shared.Options;
        await using (var context = new PlainContext(_plainOptions))
        {
            await context.GetService<IRelationalDatabaseCreator>().CreateTablesAsync();
            context.Rows.AddRange(Enumerable.Range(1, Rows).Select(i => new PlainRow { Id = i, Version = 1, Title = $"row {i}" }));
            await context.SaveChangesAsync();
        }

        await using (var context = new SharedContext(_sharedOptions))
        {
            await context.GetService<IRelationalDatabaseCreator>().CreateTablesAsync();
            await using (_coherence.BeginScope())
            {
                context.Rows.AddRange(Enumerable.Range(1, Rows).Select(i => new SharedRow { Id = i, Title = $"row {i}" }));
                await context.SaveChangesSharedAsync();
            }
        }

        // Warm: every row read once (into the cache), then served once (its token filled where it was missing).
        for (int i = 0; i < 2 * Rows / K; i++)
        {
            await SharedFromCache();
        }

        foreach ((string name, Func<Task> request) in new (string, Func<Task>)[]
        {
            ("plain", Plain), ("no-tracking", PlainNoTracking), ("shared-query", SharedQuery), ("shared-cache", SharedFromCache),
        })
        {
            (long statements, long runtime, long trips) = await CountAsync(request);
            Console.WriteLine($"// {Setup} K={K} {name}: {statements} EF Core statement(s), {runtime} runtime database read(s), {trips} memcached round trip(s) per request");
        }
    }

    private sealed class StatementCounter : DbCommandInterceptor
    {
        private long _count;

        public long Count => Interlocked.Read(ref _count);

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
        {
            Interlocked.Increment(ref _count);
            return result;
        }

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _count);
            return ValueTask.FromResult(result);
        }

        public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
        {
            Interlocked.Increment(ref _count);
            return result;
        }

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _count);
            return ValueTask.FromResult(result);
        }
    }
}
