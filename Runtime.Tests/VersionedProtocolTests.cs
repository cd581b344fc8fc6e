using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Tests;

/// <summary>The strict protocol, with two or more runtimes playing processes on one store and one database.</summary>
public sealed class VersionedProtocolTests
{
    [Fact]
    public async Task An_update_in_one_process_is_seen_by_the_next_scope_of_another()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet inA = a.Sheet(1);
        Sheet inB = b.Sheet(1);

        await using (FreshScope scope = a.Coherence.BeginScope())
        {
            inA.Title = "Q2";
            await scope.CommitAsync();
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
            Assert.Equal(2, inB.Version);
        }

        Assert.Equal(2, world.Database.VersionOf("Sheet", 1));
        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(a.Coherence.StoreKeyOf(inA)));
    }

    [Fact]
    public async Task A_stale_copy_reloads_once_per_scope_in_one_store_round_trip()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        await a.RenameAsync(1, "Q2");

        int queries = b.Db.Queries;
        long batches = world.Store.BatchCount;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
            Assert.Equal("Q2", inB.Title);
            _ = inB.LastModified;
            Assert.Equal("Q2", inB.Title);
        }

        Assert.Equal(1, world.Store.BatchCount - batches);
        Assert.Equal(1, b.Db.Queries - queries);
    }

    [Fact]
    public async Task Of_two_conflicting_commits_one_wins_and_the_other_gets_the_stale_entity_exception()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet inA = a.Sheet(1);
        Sheet inB = b.Sheet(1);

        FreshScope scopeA = a.Coherence.BeginScope();
        FreshScope scopeB = b.Coherence.BeginScope();
        Assert.Equal("Q1", inA.Title);
        Assert.Equal("Q1", inB.Title);
        inA.Title = "from A";
        inB.Title = "from B";
        await scopeA.CommitAsync();
        var refused = await Assert.ThrowsAsync<StaleEntityException>(() => scopeB.CommitAsync());
        Assert.Equal("Sheet", refused.EntityName);
        Assert.Equal(1, refused.Key);
        Assert.Equal(1L, refused.LocalVersion);
        Assert.Contains("Nothing was written", refused.Message, StringComparison.Ordinal);
        await scopeB.DisposeAsync();
        await scopeA.DisposeAsync();

        Assert.Equal("from A", world.TitleInDatabase(1));
        Assert.Equal(2, world.Database.VersionOf("Sheet", 1));

        // The loser retries in a new scope: it reloads A's commit first, then its own write lands on top.
        await using (FreshScope retry = b.Coherence.BeginScope())
        {
            Assert.Equal("from A", inB.Title);
            inB.Title = "from B";
            await retry.CommitAsync();
        }

        Assert.Equal("from B", world.TitleInDatabase(1));
        Assert.Equal(3, world.Database.VersionOf("Sheet", 1));
    }

    [Fact]
    public async Task A_write_without_a_read_cannot_overwrite_a_newer_commit()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        await a.RenameAsync(1, "from A");

        await using FreshScope scope = b.Coherence.BeginScope();
        inB.Title = "blind write";
        await Assert.ThrowsAsync<StaleEntityException>(() => scope.CommitAsync());
        Assert.Equal("from A", world.TitleInDatabase(1));
    }

    [Fact]
    public async Task Reading_after_a_blind_write_to_a_stale_copy_throws_instead_of_discarding_the_write()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        await a.RenameAsync(1, "from A");

        await using FreshScope scope = b.Coherence.BeginScope();
        inB.Title = "blind write";
        var stale = Assert.Throws<StaleEntityException>(() => inB.LastModified);
        Assert.Contains("without having checked it first", stale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_delete_is_noticed_by_the_other_process()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet inA = a.Sheet(1);
        Sheet inB = b.Sheet(1);

        await using (FreshScope scope = a.Coherence.BeginScope())
        {
            scope.Delete(inA);
            await scope.CommitAsync();
            Assert.Throws<EntityDeletedException>(() => inA.Title);
        }

        Assert.Null(world.Database.VersionOf("Sheet", 1));
        Assert.Equal(SharedToken.Deleted(2).Value, world.Store.Peek(a.Coherence.StoreKeyOf(inA))); // the delete took version 2
        await using (b.Coherence.BeginScope())
        {
            var deleted = Assert.Throws<EntityDeletedException>(() => inB.Title);
            Assert.Equal("Sheet", deleted.EntityName);
            Assert.Equal(1, deleted.Key);
        }
    }

    [Fact]
    public async Task A_delete_is_noticed_through_the_database_when_the_tombstone_is_gone()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet inA = a.Sheet(1);
        Sheet inB = b.Sheet(1);
        await a.CommitAsync(scope => scope.Delete(inA));
        world.Store.Clear();

        await using (b.Coherence.BeginScope())
        {
            Assert.Throws<EntityDeletedException>(() => inB.Title);
        }
    }

    [Fact]
    public async Task A_deleted_entity_in_a_batch_fails_only_when_it_is_touched()
    {
        var world = new World();
        world.InsertSheet(1, "one");
        world.InsertSheet(2, "two");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet first = b.Sheet(1);
        Sheet second = b.Sheet(2);
        await a.CommitAsync(scope => scope.Delete(a.Sheet(2)));

        await using FreshScope scope = b.Coherence.BeginScope();
        scope.Track(first);
        scope.Track(second);
        Assert.Equal("one", first.Title);
        Assert.Throws<EntityDeletedException>(() => second.Title);
        Assert.Equal("one", first.Title);
    }

    [Fact]
    public async Task An_evicted_token_is_a_miss_never_fresh_and_the_lease_winner_fills_it_from_the_database()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title); // fills clean(1)
        }

        await a.RenameAsync(1, "Q2");
        string key = b.Coherence.StoreKeyOf(inB);
        Assert.True(world.Store.Evict(key));

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
        }

        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(key));

        // With the token refilled, the next scope is answered by the store alone.
        int queries = b.Db.Queries;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
        }

        Assert.Equal(queries, b.Db.Queries);
    }

    [Fact]
    public async Task After_a_store_restart_every_entity_is_validated_against_the_database()
    {
        var world = new World();
        for (int id = 1; id <= 20; id++)
        {
            world.InsertSheet(id, $"sheet {id}");
        }

        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet[] inB = [.. Enumerable.Range(1, 20).Select(b.Sheet)];
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            await scope.CheckAsync(inB);
        }

        await a.CommitAsync(_ =>
        {
            for (int id = 1; id <= 20; id += 2)
            {
                a.Sheet(id).Title = $"renamed {id}";
            }
        });
        world.Store.Clear();

        await using (b.Coherence.BeginScope())
        {
            foreach (Sheet sheet in inB)
            {
                Assert.Equal(sheet.Id % 2 == 1 ? $"renamed {sheet.Id}" : $"sheet {sheet.Id}", sheet.Title);
            }
        }
    }

    [Fact]
    public async Task A_dirty_token_sends_the_check_to_the_database_and_caches_nothing()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet inB = b.Sheet(1);
        await b.ReadInScopeAsync(inB);

        // Another writer raised dirty(2) and has not committed yet.
        string key = b.Coherence.StoreKeyOf(inB);
        var raise = new StoreBatch();
        raise.Add(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Dirty(2).Value, Ttl: TimeSpan.FromSeconds(30)));
        world.Store.Execute(raise);

        int queries = b.Db.Queries;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title);
        }

        Assert.Equal(1, b.Db.Queries - queries);
        Assert.Equal(SharedToken.Dirty(2).Value, world.Store.Peek(key));
    }

    [Fact]
    public async Task A_writer_that_dies_between_commit_and_publish_leaves_a_dirty_token_that_readers_verify()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        var world = new World(clock);
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet inA = a.Sheet(1);
        Sheet inB = b.Sheet(1);
        await b.ReadInScopeAsync(inB);

        // The writer's steps, stopped before PublishAsync.
        var publication = new WritePublication(a.Coherence);
        await using (var transaction = await a.Db.BeginWriteAsync(CancellationToken.None))
        {
            inA.SetSharedValueForTest(0, "committed, never published");
            Assert.True(await transaction.UpdateAsync(inA, 1, 2, CancellationToken.None));
            publication.AddUpdate(inA, 2);
            await publication.RaiseDirtyAsync();
            await transaction.CommitAsync(CancellationToken.None);
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("committed, never published", inB.Title);
        }

        // The dirty token expires; the next miss fills clean(2) from the database, and the store answers again.
        clock.Advance(a.Coherence.Options.DirtyTokenTtl + TimeSpan.FromSeconds(1));
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("committed, never published", inB.Title);
        }

        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(b.Coherence.StoreKeyOf(inB)));
    }

    [Fact]
    public async Task A_filler_racing_a_writer_whose_dirty_token_was_evicted_fills_the_committed_version()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet inA = a.Sheet(1);
        Sheet inB = b.Sheet(1);
        string key = b.Coherence.StoreKeyOf(inB);
        await b.ReadInScopeAsync(inB);

        // The writer has updated the row (holding its lock) and raised dirty(2); then the dirty token is evicted.
        var publication = new WritePublication(a.Coherence);
        var transaction = await a.Db.BeginWriteAsync(CancellationToken.None);
        inA.SetSharedValueForTest(0, "Q2");
        Assert.True(await transaction.UpdateAsync(inA, 1, 2, CancellationToken.None));
        publication.AddUpdate(inA, 2);
        await publication.RaiseDirtyAsync();
        Assert.True(world.Store.Evict(key));

        // The reader misses, wins the lease, and its locking read waits for the writer's commit.
        Task<string> reader = Task.Run(async () =>
        {
            await using FreshScope scope = b.Coherence.BeginScope();
            return inB.Title;
        });
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            while (world.Store.Count == 0)
            {
                await Task.Delay(5, wait.Token);
            }
        }

        Assert.False(reader.IsCompleted);
        await transaction.CommitAsync(CancellationToken.None);
        await transaction.DisposeAsync();
        await publication.PublishAsync(); // finds the lease placeholder, not its dirty token: writes nothing

        Assert.Equal("Q2", await reader.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(key));
    }

    [Fact]
    public async Task A_lost_lease_sends_the_check_to_the_database_without_filling()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet inB = b.Sheet(1);
        string key = b.Coherence.StoreKeyOf(inB);

        // Another process won the lease and has not filled it yet.
        var lease = new StoreBatch();
        lease.AddRead(key, TimeSpan.FromSeconds(10));
        world.Store.Execute(lease);
        Assert.Equal(StoreStatus.LeaseWon, lease[0].Status);

        using var lost = new MetricCollector<long>(b.Coherence.Metrics.LeasesLost);
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title);
        }

        Assert.Equal(1, lost.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Null(world.Store.Peek(key));
    }

    [Fact]
    public async Task A_scope_checks_all_its_entities_in_one_batch_and_reloads_the_stale_ones_in_one_query()
    {
        var world = new World();
        for (int id = 1; id <= 100; id++)
        {
            world.InsertSheet(id, $"sheet {id}");
        }

        var a = world.NewProcess();
        var b = world.NewProcess();
        Sheet[] inB = [.. Enumerable.Range(1, 100).Select(b.Sheet)];

        // First scope: every token is missing; one store batch, one locking version read, one batch of fills.
        int queries = b.Db.Queries;
        long batches = world.Store.BatchCount;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            foreach (Sheet sheet in inB)
            {
                scope.Track(sheet);
            }

            Assert.Equal("sheet 1", inB[0].Title);
            Assert.All(inB, sheet => Assert.StartsWith("sheet", sheet.Title, StringComparison.Ordinal));
        }

        Assert.Equal(2, world.Store.BatchCount - batches);
        Assert.Equal(1, b.Db.Queries - queries);

        await a.CommitAsync(_ =>
        {
            for (int id = 1; id <= 10; id++)
            {
                a.Sheet(id).Title = $"renamed {id}";
            }
        });

        // Second scope: one store batch; ten stale entities reloaded in one query.
        queries = b.Db.Queries;
        batches = world.Store.BatchCount;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            await scope.CheckAsync(inB);
            Assert.Equal("renamed 10", inB[9].Title);
            Assert.Equal("sheet 11", inB[10].Title);
        }

        Assert.Equal(1, world.Store.BatchCount - batches);
        Assert.Equal(1, b.Db.Queries - queries);
    }

    [Fact]
    public async Task Disposing_a_scope_without_commit_publishes_nothing_and_discards_the_changes()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet inB = b.Sheet(1);

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title);
            inB.Title = "draft";
            Assert.Equal("draft", inB.Title);
        }

        string key = b.Coherence.StoreKeyOf(inB);
        Assert.Equal(SharedToken.Clean(1).Value, world.Store.Peek(key));
        Assert.Equal("Q1", world.TitleInDatabase(1));
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title);
        }
    }

    [Fact]
    public async Task A_reload_inside_an_old_repeatable_read_snapshot_throws_the_stale_snapshot_exception()
    {
        // The Django story: the view's transaction began before another request changed the sheet.
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();

        using (b.Db.BeginRepeatableRead())
        {
            await using (b.Coherence.BeginScope())
            {
                Assert.Equal("Q1", inB.Title);
            }

            await a.RenameAsync(1, "changed meanwhile");

            await using (b.Coherence.BeginScope())
            {
                var stale = Assert.Throws<StaleSnapshotException>(() => inB.Title);
                Assert.Equal(2, stale.ExpectedVersion);
                Assert.Equal(1, stale.LoadedVersion);
                Assert.Contains("Commit or roll back the transaction", stale.Message, StringComparison.Ordinal);
            }
        }

        // The fix: end the transaction first, then check.
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("changed meanwhile", inB.Title);
        }
    }

    [Fact]
    public async Task A_lease_fill_inside_an_old_snapshot_is_refused_rather_than_filling_an_old_version()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        using (b.Db.BeginRepeatableRead())
        {
            await a.RenameAsync(1, "Q2");
            world.Store.Clear();

            await using (b.Coherence.BeginScope())
            {
                Assert.Throws<StaleSnapshotException>(() => inB.Title);
            }
        }

        Assert.NotEqual(SharedToken.Clean(1).Value, world.Store.Peek(b.Coherence.StoreKeyOf(inB)));
    }

    [Fact]
    public async Task Contended_increments_from_four_processes_lose_no_update()
    {
        var world = new World();
        world.Database.Insert(new Counter { Id = 1, Version = 1, Value = 0 });
        const int processes = 4;
        const int increments = 50;
        using var metrics = new SharedEntitiesMetrics();
        using var conflicts = new MetricCollector<long>(metrics.Conflicts);

        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await Task.WhenAll(Enumerable.Range(0, processes).Select(_ => Task.Run(async () =>
        {
            var process = world.NewProcess(metrics: metrics);
            Counter counter = process.Db.Find<Counter>(1)!;
            for (int i = 0; i < increments; i++)
            {
                await process.Coherence.RunInScopeAsync(
                    async (scope, ct) =>
                    {
                        long value = counter.Value;
                        await Task.Yield(); // let another process interleave between read and write
                        counter.Value = value + 1;
                    },
                    maxAttempts: 1_000,
                    deadline.Token);
            }
        })));

        Assert.Equal(processes * increments, (long)world.Database.ValueOf("Counter", 1, 0)!);
        Assert.Equal(1 + (processes * increments), world.Database.VersionOf("Counter", 1));
        Assert.True(conflicts.GetMeasurementSnapshot().EvaluateAsCounter() > 0, "The processes never conflicted, so the test did not exercise contention.");
    }

    [Fact]
    public async Task When_the_store_is_down_reads_go_to_the_database_and_commits_are_refused()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        await a.RenameAsync(1, "Q2");

        world.Store.IsAvailable = false;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
            inB.Title = "Q3";
            var refused = await Assert.ThrowsAsync<SharedStoreUnavailableException>(() => scope.CommitAsync());
            Assert.Contains("the commit was not made", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal("Q2", world.TitleInDatabase(1));
        Assert.Equal(2, world.Database.VersionOf("Sheet", 1));

        var tolerant = world.NewProcess(new CoherenceOptions { AllowCommitWhenStoreUnavailable = true });
        await tolerant.RenameAsync(1, "Q3");
        Assert.Equal("Q3", world.TitleInDatabase(1));
    }

    [Fact]
    public async Task A_write_by_another_application_goes_unseen_until_the_token_expires()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        var world = new World(clock);
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess(new CoherenceOptions { TokenTtl = TimeSpan.FromMinutes(5) });
        Sheet inB = b.Sheet(1);
        await b.ReadInScopeAsync(inB);

        world.Database.WriteBypassingLibrary("Sheet", 1, 0, "from a SQL script", bumpVersion: true);
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title); // the documented limit: the protocol cannot see it yet
        }

        clock.Advance(TimeSpan.FromMinutes(5));
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("from a SQL script", inB.Title);
        }
    }
}
