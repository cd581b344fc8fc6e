using System.Collections.Immutable;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SharedEntities.Caching;
using SharedEntities.Protocol;
using SharedEntities.Stores;
using Xunit;

namespace SharedEntities.Tests;

/// <summary>
/// The process-wide entity cache's core: what it keeps, and when <see cref="EntityCache.ServeAsync"/> serves a row — only
/// when the store vouches for exactly the cached version, or a locking read of the database does.
/// </summary>
public sealed class EntityCacheTests
{
    private static readonly object Shape = new();

    [Fact]
    public async Task A_row_is_served_when_the_store_holds_the_clean_token_of_its_version()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(1).Value, Ttl: TimeSpan.FromHours(1))));
        using var hits = new MetricCollector<long>(process.Coherence.Metrics.CacheHits);
        int queries = process.Db.Queries;

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);

        Assert.Equal("Q1", Assert.IsType<CachedEntity>(served[0]).Values[0]);
        Assert.Equal(queries, process.Db.Queries); // no database round trip
        Assert.Equal(1, hits.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [Fact]
    public async Task A_row_is_not_served_once_another_process_committed_a_newer_version()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(2).Value, Ttl: TimeSpan.FromHours(1))));
        using var misses = new MetricCollector<long>(process.Coherence.Metrics.CacheMisses);

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);

        Assert.Null(served[0]);
        Assert.Equal(1, misses.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [Theory]
    [InlineData(0)] // a write of version 2 in flight
    [InlineData(2)] // deleted by the write of version 2
    public async Task A_row_is_not_served_while_a_write_is_in_flight_or_after_a_delete(int state)
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, (4 * 2) + state, Ttl: TimeSpan.FromHours(1))));

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);

        Assert.Null(served[0]);
    }

    [Fact]
    public async Task A_missing_token_is_filled_under_a_locking_read_and_the_row_served_when_the_database_is_at_its_version()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        Assert.Null(world.Store.Peek(key));

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);

        Assert.NotNull(served[0]);
        Assert.Equal(SharedToken.Clean(1).Value, world.Store.Peek(key));
    }

    [Fact]
    public async Task A_missing_token_is_filled_with_the_database_version_and_an_older_cached_row_is_not_served()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        world.Database.WriteBypassingLibrary("Sheet", 1, 0, "Q2", bumpVersion: true);

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);

        Assert.Null(served[0]);
        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(key));
    }

    [Fact]
    public async Task A_token_older_than_the_cached_row_is_damage_replaced_from_a_locking_read()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 5);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(3).Value, Ttl: TimeSpan.FromHours(1))));
        using var damaged = new MetricCollector<long>(process.Coherence.Metrics.DamagedTokens);

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);

        Assert.NotNull(served[0]);
        Assert.Equal(SharedToken.Clean(5).Value, world.Store.Peek(key));
        Assert.Equal(1, damaged.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [Fact]
    public async Task Nothing_is_served_inside_an_application_transaction()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(1).Value, Ttl: TimeSpan.FromHours(1))));
        long batches = world.Store.BatchCount;

        using (process.Db.BeginRepeatableRead())
        {
            CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, Shape);
            Assert.Null(served[0]);
        }

        Assert.Equal(batches, world.Store.BatchCount);
    }

    [Fact]
    public async Task Rows_of_another_shape_are_not_served()
    {
        var (world, process, key) = WorldWithCachedSheet(version: 1);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(1).Value, Ttl: TimeSpan.FromHours(1))));

        CachedEntity?[] served = await process.Coherence.Cache.ServeAsync([Probe(1)], process.Db, new object());

        Assert.Null(served[0]);
    }

    [Fact]
    public void An_offer_keeps_the_newest_version_and_excluded_or_serial_only_types_are_not_kept()
    {
        var options = new CoherenceOptions();
        options.EntityCache.ExcludedEntities.Add("Note");
        var world = new World();
        Process process = world.NewProcess(options);
        EntityCache cache = process.Coherence.Cache;
        SharedEntityType sheet = ((ISharedEntity)new Sheet()).SharedType;

        cache.Offer("k", sheet, Row(3, "new"));
        cache.Offer("k", sheet, Row(2, "old"));
        Assert.Equal("new", cache.Find("k")!.Values[0]);

        cache.Offer("n", ((ISharedEntity)new Note()).SharedType, Row(1, "x"));
        Assert.Null(cache.Find("n"));
        Assert.False(cache.Caches(((ISharedEntity)new Note()).SharedType));
        Assert.True(cache.Caches(sheet));
    }

    [Fact]
    public void The_cache_holds_at_most_its_size_limit_and_counts_evictions_and_entries()
    {
        var options = new CoherenceOptions();
        options.EntityCache.SizeLimit = 50;
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        using var metrics = new SharedEntitiesMetrics(meters);
        using var evictions = new MetricCollector<long>(metrics.CacheEvictions);
        using var coherence = new Coherence(new InMemorySharedStore(), options, metrics: metrics);
        using var entries = new MetricCollector<long>(meters, SharedEntitiesMetrics.MeterName, "sharedentities.cache.entries");
        SharedEntityType sheet = ((ISharedEntity)new Sheet()).SharedType;

        for (int i = 0; i < 500; i++)
        {
            coherence.Cache.Offer($"k{i}", sheet, Row(1, "t"));
        }

        Assert.InRange(coherence.Cache.Count, 1, 50);
        Assert.True(evictions.GetMeasurementSnapshot().EvaluateAsCounter() >= 450);
        entries.RecordObservableInstruments();
        Assert.Equal(coherence.Cache.Count, Assert.Single(entries.GetMeasurementSnapshot()).Value);
    }

    [Fact]
    public async Task A_commit_removes_the_rows_it_wrote()
    {
        var (_, process, key) = WorldWithCachedSheet(version: 1);

        await process.RenameAsync(1, "Q2");

        Assert.Null(process.Coherence.Cache.Find(key));
    }

    [Fact]
    public void Invalid_cache_options_are_refused_by_name_and_frozen_with_the_runtime()
    {
        var options = new CoherenceOptions();
        options.EntityCache.SizeLimit = 2;
        Assert.Contains("SizeLimit", Assert.Throws<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);

        options.EntityCache.SizeLimit = 100;
        using var coherence = new Coherence(new InMemorySharedStore(), options);
        Assert.Throws<InvalidOperationException>(() => coherence.Options.EntityCache.SizeLimit = 5);
        Assert.Throws<NotSupportedException>(() => coherence.Options.EntityCache.ExcludedEntities.Add("Sheet"));
        options.EntityCache.ExcludedEntities.Add("Sheet"); // the caller's copy does not reach the runtime
        Assert.True(coherence.Cache.Caches(((ISharedEntity)new Sheet()).SharedType));
    }

    [Fact]
    public async Task An_entity_attached_fresh_in_a_scope_costs_no_store_round_trip()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process process = world.NewProcess();
        await using FreshScope scope = process.Coherence.BeginScope();
        var sheet = new Sheet { Id = 1, Version = 1 };
        sheet.SetSharedValueForTest(0, "Q1");
        long batches = world.Store.BatchCount;

        process.Coherence.AttachFresh(sheet, process.Db);

        Assert.Equal("Q1", sheet.Title);
        Assert.Equal(batches, world.Store.BatchCount);
    }

    [Fact]
    public async Task An_entity_attached_inside_a_transaction_or_after_a_write_found_the_store_ahead_is_checked()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process process = world.NewProcess();
        await using (process.Coherence.BeginScope())
        {
            using IDisposable transaction = process.Db.BeginRepeatableRead();
            var sheet = new Sheet { Id = 1, Version = 1 };
            sheet.SetSharedValueForTest(0, "Q1");
            long batches = world.Store.BatchCount;
            process.Coherence.AttachFresh(sheet, process.Db);
            _ = sheet.Title;
            Assert.True(world.Store.BatchCount > batches);
        }

        // A write that finds the store ahead of the database marks the key: its next read by a query is checked,
        // and that check repairs the row.
        Sheet held = process.Sheet(1);
        string key = process.Coherence.StoreKeyOf(held);
        world.Store.Execute(Batch(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(9).Value, Ttl: TimeSpan.FromHours(1))));
        await Assert.ThrowsAsync<StaleEntityException>(() => process.CommitAsync(_ => held.Title = "refused"));
        await using (process.Coherence.BeginScope())
        {
            var again = new Sheet { Id = 1, Version = 1 };
            again.SetSharedValueForTest(0, "Q1");
            long batches = world.Store.BatchCount;
            process.Coherence.AttachFresh(again, process.Db);
            _ = again.Title;
            Assert.True(world.Store.BatchCount > batches);
            Assert.True(again.Version > 9); // repaired past the store's token
        }

        await process.RenameAsync(1, "after the repair");
        Assert.Equal("after the repair", world.TitleInDatabase(1));
    }

    private static (World World, Process Process, string Key) WorldWithCachedSheet(long version)
    {
        var world = new World();
        world.InsertSheet(1, "Q1", version);
        Process process = world.NewProcess();
        string key = process.Coherence.StoreKeyOf(Probe(1));
        process.Coherence.Cache.Offer(key, ((ISharedEntity)new Sheet()).SharedType, Row(version, "Q1"));
        return (world, process, key);
    }

    private static Sheet Probe(int id) => new() { Id = id };

    private static CachedEntity Row(long version, string title) => new(Shape, version, ImmutableArray.Create<object?>(title));

    private static StoreBatch Batch(StoreOperation operation)
    {
        var batch = new StoreBatch();
        batch.Add(operation);
        return batch;
    }
}
