using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SharedEntities.AdoNet;
using SharedEntities.Caching;
using SharedEntities.Memcached;
using SharedEntities.Memcached.Tests;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// Reads by key through the process-wide entity cache (docs/efcore.md, "Reads by key: the entity cache"): each
/// "process" is a runtime of its own, with contexts created per request as servers do; all share one database and one
/// store. Run on SQLite with the embedded store and on PostgreSQL with memcached.
/// </summary>
public abstract class EntityCacheTests : IDisposable
{
    private readonly string _keyPrefix = "ec" + Guid.NewGuid().ToString("N")[..10] + ":";
    private readonly Disposables _owned = new();
    private Coherence? _seeder;

    protected abstract ISharedStore Store { get; }

    protected abstract DbDialect Dialect { get; }

    /// <summary>The seeder's runtime: it inserts and reads rows back for the assertions, apart from the processes under test.</summary>
    private Coherence Seeder => _seeder ??= NewProcess();

    public void Dispose()
    {
        _owned.Dispose();
        DisposeDatabase();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task A_second_context_is_served_a_row_the_first_read_with_no_database_statement_and_instances_of_its_own()
    {
        Seed(1, "Ada");
        Coherence process = NewProcess();
        Profile inFirst;
        (List<string> Tags, byte[] Avatar) firstValues;
        using (CacheContext first = NewContext(process))
        {
            await using (process.BeginScope())
            {
                inFirst = await first.Profiles.SingleAsync(p => p.Id == 1);
                Assert.Equal("Ada", inFirst.Name);
                firstValues = (inFirst.Tags, inFirst.Avatar);
            }
        }

        CachedEntity cached = Assert.IsType<CachedEntity>(process.Cache.Find(process.StoreKeyOf(inFirst)));
        Assert.Equal(1, cached.Version);

        var statements = new StatementCounter();
        using var batches = new MetricCollector<long>(process.Metrics.StoreBatches);
        using CacheContext second = NewContext(process, statements);
        await using (process.BeginScope())
        {
            Profile served = Assert.IsType<Profile>(await second.Profiles.FindSharedAsync(1));
            Assert.NotSame(inFirst, served);
            Assert.Equal(("Ada", 1L), (served.Name, served.Version));
            Assert.Equal(["a", "b"], served.Tags);
            Assert.Equal([1, 2, 3], served.Avatar);
            Assert.Equal("eu", second.Entry(served).Property("Region").CurrentValue); // the shadow value came with the row
            Assert.NotSame(firstValues.Tags, served.Tags);
            Assert.NotSame(firstValues.Avatar, served.Avatar);
            Assert.Equal(EntityState.Unchanged, second.Entry(served).State);
            Assert.False(second.ChangeTracker.HasChanges());
            Assert.Same(served, await second.Profiles.FindSharedAsync(1)); // tracked now: returned as it is
        }

        Assert.Equal(0, statements.Count + LoaderStatements(second));
        Assert.Equal(1, Sum(batches)); // the store vouched once; the reads in the scope needed no check
    }

    [Fact]
    public async Task Served_values_are_copies_so_no_context_changes_the_cached_row_or_another_contexts_instance()
    {
        Seed(1, "Ada");
        Coherence process = NewProcess();
        using CacheContext first = NewContext(process);
        Profile inFirst = first.Profiles.Single(p => p.Id == 1);
        inFirst.Tags.Add("changed by the first context");
        inFirst.Avatar[0] = 99;

        using CacheContext second = NewContext(process);
        Profile served = Assert.IsType<Profile>(second.Profiles.FindShared(1));
        Assert.Equal(["a", "b"], served.Tags);
        Assert.Equal([1, 2, 3], served.Avatar);
        served.Tags.Clear();
        served.Avatar[1] = 42;

        using CacheContext third = NewContext(process);
        Profile again = Assert.IsType<Profile>(await third.Profiles.FindSharedAsync(1));
        Assert.Equal(["a", "b"], again.Tags);
        Assert.Equal([1, 2, 3], again.Avatar);
        Assert.Equal(0, LoaderStatements(third));

        // EF Core sees the served instance's in-place changes as changes, as for any tracked entity.
        second.ChangeTracker.DetectChanges();
        Assert.True(second.Entry(served).Property(p => p.Tags).IsModified);
    }

    [Fact]
    public async Task A_served_entity_saves_guarded_by_its_version()
    {
        Seed(1, "Ada");
        Seed(2, "Bob");
        Coherence process = NewProcess();
        Coherence other = NewProcess();
        Assert.Equal(2, ReadAll(process)); // cached

        var statements = new StatementCounter();
        using (CacheContext context = NewContext(process, statements))
        {
            await using (process.BeginScope())
            {
                Profile served = Assert.IsType<Profile>(await context.Profiles.FindSharedAsync(1));
                Assert.Equal(0, statements.Count);
                served.Name = "Ada Lovelace";
                await context.SaveChangesSharedAsync();
                Assert.Equal(2, served.Version);
            }
        }

        Assert.Equal(("Ada Lovelace", 2L), ReadRow(1));

        // Another process commits first: the served copy's save is refused by its version, and nothing is written.
        using (CacheContext context = NewContext(process, statements))
        {
            await using (process.BeginScope())
            {
                Profile served = Assert.IsType<Profile>(await context.Profiles.FindSharedAsync(2));
                await CommitNameAsync(other, 2, "from the other process");
                served.Name = "would lose the other process's update";
                StaleEntityException refused = await Assert.ThrowsAsync<StaleEntityException>(() => context.SaveChangesSharedAsync());
                Assert.Equal(2, refused.Key);
                Assert.Equal(1, refused.LocalVersion);
            }
        }

        Assert.Equal(("from the other process", 2L), ReadRow(2));
    }

    [Fact]
    public async Task After_another_processs_commit_the_next_read_loads_the_new_row_and_refills_the_cache()
    {
        Seed(1, "v1");
        Coherence process = NewProcess();
        Coherence other = NewProcess();
        using (CacheContext warm = NewContext(process))
        {
            Assert.Equal("v1", warm.Profiles.Single(p => p.Id == 1).Name);
        }

        await CommitNameAsync(other, 1, "v2");

        var statements = new StatementCounter();
        string key;
        using (CacheContext next = NewContext(process, statements))
        {
            await using (process.BeginScope())
            {
                Profile loaded = Assert.IsType<Profile>(await next.Profiles.FindSharedAsync(1));
                Assert.Equal(("v2", 2L), (loaded.Name, loaded.Version)); // never the cached version 1
                key = process.StoreKeyOf(loaded);
            }
        }

        Assert.Equal(1, statements.Count); // one ordinary query
        Assert.Equal(2, process.Cache.Find(key)!.Version); // which refilled the cache

        using CacheContext after = NewContext(process, statements);
        Profile served = Assert.IsType<Profile>(await after.Profiles.FindSharedAsync(1));
        Assert.Equal("v2", served.Name);
        Assert.Equal(1, statements.Count + LoaderStatements(after));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_missing_token_is_filled_under_the_lock_and_the_cached_row_served_if_its_version_is_the_rows(bool async)
    {
        Seed(1, "Ada");
        Coherence process = NewProcess();
        string key;
        using (CacheContext warm = NewContext(process))
        {
            key = process.StoreKeyOf(warm.Profiles.Single(p => p.Id == 1));
        }

        Evict(key); // evicted, expired or restarted: the reader wins the lease

        var statements = new StatementCounter();
        using (CacheContext context = NewContext(process, statements))
        {
            Profile? served = async ? await context.Profiles.FindSharedAsync(1) : context.Profiles.FindShared(1);
            Assert.Equal("Ada", served?.Name);
            Assert.Equal(0, statements.Count); // no query: the locked version read said the cached version is the row's
            Assert.True(LoaderStatements(context) > 0);
        }

        using CacheContext after = NewContext(process, statements);
        Assert.Equal("Ada", (await after.Profiles.FindSharedAsync(1))?.Name);
        Assert.Equal(0, statements.Count + LoaderStatements(after)); // the fill put the clean token back
    }

    [Fact]
    public async Task A_query_in_a_scope_costs_no_store_round_trip_afterwards_and_fills_the_cache()
    {
        SeedNumbered(3);

        Coherence process = NewProcess();
        using var batches = new MetricCollector<long>(process.Metrics.StoreBatches);
        using CacheContext context = NewContext(process);
        List<Profile> all;
        await using (process.BeginScope())
        {
            all = await context.Profiles.OrderBy(p => p.Id).ToListAsync();
            Assert.Equal(["p1", "p2", "p3"], all.Select(p => p.Name));
            Assert.All(all, p => Assert.Equal(["a", "b"], p.Tags));
        }

        Assert.Equal(0, Sum(batches));
        Assert.All(all, p => Assert.Equal(1, process.Cache.Find(process.StoreKeyOf(p))?.Version));
    }

    [Fact]
    public async Task A_no_tracking_query_fills_the_cache_too_shadow_values_included()
    {
        Seed(1, "Ada");
        Coherence process = NewProcess();
        using (CacheContext context = NewContext(process))
        {
            Assert.Single(await context.Profiles.AsNoTracking().ToListAsync());
        }

        Assert.Equal(1, process.Cache.Find(process.StoreKeyOf(new Profile { Id = 1 }))?.Version);
        var statements = new StatementCounter();
        using CacheContext next = NewContext(process, statements);
        Profile served = Assert.IsType<Profile>(await next.Profiles.FindSharedAsync(1));
        Assert.Equal("eu", next.Entry(served).Property("Region").CurrentValue);
        Assert.Equal(0, statements.Count + LoaderStatements(next));
    }

    [Fact]
    public async Task An_applications_own_materialization_interceptor_still_runs_and_the_rows_still_fill_the_cache_whichever_options_come_first()
    {
        Seed(1, "Ada");
        Coherence process = NewProcess();
        var seen = new MaterializedNames();
        var options = new DbContextOptionsBuilder<CacheContext>();
        options.UseSharedEntities(process, Dialect).AddInterceptors(seen); // before the provider's options
        Configure(options);
        using (var context = new CacheContext(options.Options))
        {
            await using (process.BeginScope())
            {
                Assert.Equal("Ada", (await context.Profiles.AsNoTracking().SingleAsync()).Name); // read in the scope: attached
            }
        }

        Assert.Equal(["Ada"], seen.Names);
        Assert.Equal(1, process.Cache.Find(process.StoreKeyOf(new Profile { Id = 1 }))?.Version);
    }

    [Fact]
    public async Task Pooled_contexts_fill_and_use_the_cache_on_every_lease()
    {
        SeedNumbered(3);

        Coherence process = NewProcess();
        var statements = new StatementCounter();
        await using ServiceProvider services = new ServiceCollection()
            .AddDbContextPool<CacheContext>(options => Configure(options.UseSharedEntities(process, Dialect).AddInterceptors(statements)), poolSize: 1)
            .BuildServiceProvider();
        for (int id = 1; id <= 3; id++)
        {
            using (IServiceScope request = services.CreateScope())
            {
                CacheContext context = request.ServiceProvider.GetRequiredService<CacheContext>();
                Assert.Equal("p" + id, context.Profiles.Single(p => p.Id == id).Name); // a query of this lease
            }

            using (IServiceScope request = services.CreateScope())
            {
                int before = statements.Count;
                CacheContext context = request.ServiceProvider.GetRequiredService<CacheContext>();
                Assert.Equal("p" + id, (await context.Profiles.FindSharedAsync(id))?.Name);
                Assert.Equal(before, statements.Count); // served from the row the previous lease read
            }
        }
    }

    [Fact]
    public void Outside_a_scope_a_served_entity_is_checked_on_every_read_as_usual()
    {
        Seed(1, "Ada");
        Coherence process = NewProcess();
        Assert.Equal(1, ReadAll(process)); // cached

        var statements = new StatementCounter();
        using var batches = new MetricCollector<long>(process.Metrics.StoreBatches);
        using CacheContext context = NewContext(process, statements);
        Profile served = Assert.IsType<Profile>(context.Profiles.FindShared(1));
        Assert.Equal(1, Sum(batches));
        Assert.Equal("Ada", served.Name); // CheckEveryRead: one check
        Assert.Equal("Ada", served.Name); // and another
        Assert.Equal(3, Sum(batches));
        Assert.Equal(0, statements.Count + LoaderStatements(context));
    }

    [Fact]
    public async Task FindMany_returns_the_keys_in_order_leaves_out_missing_ones_and_queries_once_for_what_is_neither_tracked_nor_cached()
    {
        SeedNumbered(3);

        Coherence process = NewProcess();
        using (CacheContext warm = NewContext(process))
        {
            Assert.Equal("p2", warm.Profiles.Single(p => p.Id == 2).Name); // 2 is cached
        }

        var statements = new StatementCounter();
        using CacheContext context = NewContext(process, statements);
        await using (process.BeginScope())
        {
            Profile tracked = context.Profiles.Single(p => p.Id == 1); // 1 is tracked
            int before = statements.Count;

            IReadOnlyList<Profile> found = await context.Profiles.FindManySharedAsync([3, 99, 1, 3, 2]);

            Assert.Equal([3, 1, 3, 2], found.Select(p => p.Id));
            Assert.Same(tracked, found[1]);
            Assert.Same(found[0], found[2]);
            Assert.Equal(["p3", "p1", "p3", "p2"], found.Select(p => p.Name));
            Assert.Equal(1, statements.Count - before); // 3 and 99 in one query; 2 served; 1 tracked
            Assert.Null(await context.Profiles.FindSharedAsync(98));
            Assert.Empty(context.Profiles.FindManyShared(Array.Empty<int>()));
            Assert.Equal([2, 3], context.Profiles.FindManyShared([2, 97, 3]).Select(p => p.Id));
        }

        ArgumentException wrongType = Assert.Throws<ArgumentException>(() => context.Profiles.FindShared(1L));
        Assert.Contains("is a Int32; FindShared was given a Int64", wrongType.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inside_a_repeatable_read_transaction_nothing_is_served_and_an_old_snapshot_is_refused()
    {
        Seed(1, "v1");
        Coherence process = NewProcess();
        Coherence other = NewProcess();
        Assert.Equal(1, ReadAll(process)); // cached at version 1

        var statements = new StatementCounter();
        using CacheContext context = NewContext(process, statements);
        Profile inTransaction;
        using (BeginSnapshot(context))
        {
            await using (process.BeginScope())
            {
                int before = statements.Count;
                inTransaction = Assert.IsType<Profile>(await context.Profiles.FindSharedAsync(1));
                Assert.Equal(1, statements.Count - before); // queried in the transaction, not served
                Assert.Equal("v1", inTransaction.Name); // checked against the store, as inside any transaction
            }

            await CommitNameAsync(other, 1, "v2");
            await using (process.BeginScope())
            {
                StaleSnapshotException stale = Assert.Throws<StaleSnapshotException>(() => inTransaction.Name);
                Assert.Equal("Profile", stale.EntityName);
            }
        }

        await using (process.BeginScope())
        {
            Assert.Equal("v2", inTransaction.Name);
        }
    }

    [Fact]
    public async Task Sixteen_contexts_reading_the_same_keys_while_another_process_writes_see_only_committed_rows()
    {
        int[] keys = [1, 2, 3, 4];
        foreach (int id in keys)
        {
            Seed(id, "v1");
        }

        Coherence process = NewProcess();
        Coherence writer = NewProcess();
        using var hits = new MetricCollector<long>(process.Metrics.CacheHits);
        Task writes = Task.Run(async () =>
        {
            for (int i = 0; i < 12; i++)
            {
                using CacheContext context = NewContext(writer);
                await using (writer.BeginScope())
                {
                    Profile profile = Assert.IsType<Profile>(await context.Profiles.FindSharedAsync(keys[i % keys.Length]));
                    profile.Name = $"v{profile.Version + 1}"; // every committed row's name says its version
                    await context.SaveChangesSharedAsync();
                }
            }
        });
        Task[] readers = [.. Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            for (int round = 0; round < 20; round++)
            {
                using CacheContext context = NewContext(process);
                await using (process.BeginScope())
                {
                    IReadOnlyList<Profile> found = await context.Profiles.FindManySharedAsync(keys);
                    Assert.Equal(keys, found.Select(p => p.Id));
                    Assert.All(found, p => Assert.Equal($"v{p.Version}", p.Name));
                    Assert.All(found, p => Assert.Equal(["a", "b"], p.Tags));
                }
            }
        }))];
        await Task.WhenAll([writes, .. readers]).WaitAsync(TimeSpan.FromMinutes(3));
        await writer.PublishedAsync();

        Assert.True(Sum(hits) > 0, "some reads were served from the cache");
        using CacheContext last = NewContext(process);
        await using (process.BeginScope())
        {
            foreach (Profile profile in await last.Profiles.FindManySharedAsync(keys))
            {
                Assert.Equal(ReadRow(profile.Id), (profile.Name, profile.Version)); // the last commits, never an older cached row
            }
        }
    }

    protected void Seed(int id, string name)
    {
        using CacheContext context = NewContext(Seeder);
        var profile = new Profile { Id = id, Version = 1, Name = name, Tags = ["a", "b"], Avatar = [1, 2, 3] };
        context.Profiles.Add(profile);
        context.Entry(profile).Property("Region").CurrentValue = "eu";
        context.SaveChanges();
    }

    /// <summary>Profiles 1 to <paramref name="count"/>, named p1, p2, …</summary>
    protected void SeedNumbered(int count)
    {
        for (int id = 1; id <= count; id++)
        {
            Seed(id, "p" + id);
        }
    }

    /// <summary>Reads every profile by a query of a new context of <paramref name="process"/> (which caches them); returns how many.</summary>
    protected int ReadAll(Coherence process)
    {
        using CacheContext context = NewContext(process);
        return context.Profiles.ToList().Count;
    }

    protected (string Name, long Version) ReadRow(int id)
    {
        using CacheContext context = NewContext(Seeder);
        var row = context.Profiles.AsNoTracking().Where(p => p.Id == id).Select(p => new { p.Name, p.Version }).Single();
        return (row.Name, row.Version);
    }

    /// <summary>Another process's read-modify-commit of a name, published before it returns.</summary>
    protected async Task CommitNameAsync(Coherence process, int id, string name)
    {
        using CacheContext context = NewContext(process);
        await using (process.BeginScope())
        {
            context.Profiles.Single(p => p.Id == id).Name = name;
            await context.SaveChangesSharedAsync();
        }

        await process.PublishedAsync();
    }

    protected Coherence NewProcess()
    {
        return _owned.Add(new Coherence(Store, new CoherenceOptions { KeyPrefix = _keyPrefix }));
    }

    protected CacheContext NewContext(Coherence coherence, params IInterceptor[] interceptors)
    {
        var options = new DbContextOptionsBuilder<CacheContext>();
        Configure(options);
        return new CacheContext(options.UseSharedEntities(coherence, Dialect).AddInterceptors(interceptors).Options);
    }

    protected void CreateSchema()
    {
        using CacheContext context = NewContext(Seeder);
        context.Database.EnsureCreated();
    }

    protected abstract void Configure(DbContextOptionsBuilder options);

    private sealed class MaterializedNames : IMaterializationInterceptor
    {
        public List<string> Names { get; } = [];

        public object InitializedInstance(MaterializationInterceptionData materializationData, object entity)
        {
            Names.Add(((Profile)entity).Name);
            return entity;
        }
    }

    /// <summary>Begins, in <paramref name="context"/>, a transaction whose snapshot is taken now (REPEATABLE READ); disposing rolls it back.</summary>
    protected abstract IDisposable BeginSnapshot(CacheContext context);

    protected abstract void DisposeDatabase();

    /// <summary>Drops the store's item of <paramref name="key"/>, as an eviction would.</summary>
    protected abstract void Evict(string key);

    /// <summary>The statements a context's loader ran for the runtime (checks, fills, reloads), on its own connection or the context's.</summary>
    private static int LoaderStatements(CacheContext context) => context.GetSharedEntityLoader()!.Loader?.Statements ?? 0;

    private static long Sum(MetricCollector<long> collector) => collector.GetMeasurementSnapshot().Sum(m => m.Value);

    /// <summary>Counts the statements EF Core sends through the context it is added to.</summary>
    protected sealed class StatementCounter : DbCommandInterceptor
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result) =>
            Counted(result);

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Counted(result));

        public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result) => Counted(result);

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Counted(result));

        public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result) => Counted(result);

        public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<object> result, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Counted(result));

        private T Counted<T>(T result)
        {
            Interlocked.Increment(ref _count);
            return result;
        }
    }
}

public sealed class SqliteEntityCacheTests : EntityCacheTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;

    public SqliteEntityCacheTests()
    {
        _store = new SqliteSharedStore(ConnectionString); // the embedded store, in the data file
        CreateSchema();
    }

    protected override ISharedStore Store => _store;

    protected override DbDialect Dialect => SqliteDialect.Instance;

    private string ConnectionString => $"Data Source={_folder.File("app.db")};Default Timeout=10";

    protected override void Configure(DbContextOptionsBuilder options) => options.UseSqlite(ConnectionString);

    protected override IDisposable BeginSnapshot(CacheContext context) => TestDatabases.BeginSqliteSnapshot(context, () => context.Profiles.AsNoTracking().Any());

    protected override void DisposeDatabase() => _folder.Dispose();

    protected override void Evict(string key) => Assert.True(_store.Evict(key));
}

[Collection(PostgresFixture.Name)]
public sealed class PostgresMemcachedEntityCacheTests : EntityCacheTests, IClassFixture<MemcachedServer>
{
    private readonly MemcachedStore _store;
    private readonly MemcachedServer _memcached;
    private readonly string _connectionString;

    public PostgresMemcachedEntityCacheTests(PostgresCluster cluster, MemcachedServer memcached)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(memcached);

        // A database per test (EnsureCreated creates it); the store: memcached (each test's keys under a prefix of its own).
        _connectionString = TestDatabases.NewPostgresDatabase(cluster);
        _memcached = memcached;
        _store = new MemcachedStore(memcached.Address);
        CreateSchema();
    }

    protected override ISharedStore Store => _store;

    protected override DbDialect Dialect => DbDialect.PostgreSql;

    protected override void Configure(DbContextOptionsBuilder options) => options.UseNpgsql(_connectionString);

    protected override IDisposable BeginSnapshot(CacheContext context) => TestDatabases.BeginPostgresSnapshot(context, () => context.Profiles.AsNoTracking().Any());

    protected override void Evict(string key) => Assert.StartsWith("HD", _memcached.Raw($"md {key}\r\n"), StringComparison.Ordinal);

    protected override void DisposeDatabase()
    {
        _store.Dispose();
        TestDatabases.ClosePostgresPool(_connectionString);
    }
}
