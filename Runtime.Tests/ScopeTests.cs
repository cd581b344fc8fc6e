namespace SharedEntities.Tests;

/// <summary>What counts as inside a scope at run time: ambient flow, async hops, nesting, reads outside.</summary>
public sealed class ScopeTests
{
    [Fact]
    public async Task Reads_in_a_scope_stay_local_across_await_and_thread_hops()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet sheet = b.Sheet(1);
        await using FreshScope scope = b.Coherence.BeginScope();
        Assert.Equal("Q1", sheet.Title);
        long batches = world.Store.BatchCount;

        await Task.Delay(1);
        Assert.Equal("Q1", sheet.Title);
        string fromPool = await Task.Run(() => sheet.Title);
        Assert.Equal("Q1", fromPool);
        Assert.Equal(batches, world.Store.BatchCount);
    }

    [Fact]
    public async Task A_task_started_in_a_scope_that_reads_after_the_scope_ended_reads_outside_it()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess(new CoherenceOptions { OutsideScopeReads = OutsideScopeReads.Throw });
        Sheet sheet = b.Sheet(1);
        var release = new TaskCompletionSource();
        Task<string> late;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", sheet.Title);
            late = Task.Run(async () =>
            {
                await release.Task;
                return sheet.Title;
            });
        }

        release.SetResult();
        await Assert.ThrowsAsync<ReadOutsideScopeException>(() => late);
    }

    [Fact]
    public async Task A_nested_scope_checks_again_and_the_outer_scope_checks_again_after_it()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet sheet = b.Sheet(1);
        await using FreshScope outer = b.Coherence.BeginScope();
        _ = sheet.Title;
        long batches = world.Store.BatchCount;
        await using (b.Coherence.BeginScope())
        {
            _ = sheet.Title;
            _ = sheet.Title;
        }

        Assert.Equal(1, world.Store.BatchCount - batches);
        _ = sheet.Title;
        _ = sheet.Title;
        Assert.Equal(2, world.Store.BatchCount - batches);
    }

    [Fact]
    public async Task Scopes_of_two_runtimes_in_one_flow_each_serve_their_own_entities()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var a = world.NewProcess();
        var b = world.NewProcess(new CoherenceOptions { OutsideScopeReads = OutsideScopeReads.Throw });
        Sheet inB = b.Sheet(1);
        await using (b.Coherence.BeginScope())
        {
            await using (a.Coherence.BeginScope())
            {
                Assert.Equal("Q1", inB.Title); // b's scope is still current for b's entities
            }
        }

        await using (a.Coherence.BeginScope())
        {
            Assert.Throws<ReadOutsideScopeException>(() => inB.Title);
        }
    }

    [Fact]
    public async Task Outside_a_scope_reads_check_every_time_by_default()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        long batches = world.Store.BatchCount;
        Assert.Equal("Q1", inB.Title);
        Assert.Equal("Q1", inB.Title);
        Assert.Equal("Q1", inB.Title);
        Assert.True(world.Store.BatchCount - batches >= 3);

        await a.RenameAsync(1, "Q2");
        Assert.Equal("Q2", inB.Title);
    }

    [Fact]
    public void Outside_a_scope_reads_can_be_made_to_throw()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess(new CoherenceOptions { OutsideScopeReads = OutsideScopeReads.Throw });
        Sheet inB = b.Sheet(1);
        var thrown = Assert.Throws<ReadOutsideScopeException>(() => inB.Title);
        Assert.Contains("BeginScope", thrown.Message, StringComparison.Ordinal);
        Assert.Equal("Sheet", thrown.EntityName);
    }

    [Fact]
    public async Task A_plain_new_object_is_a_plain_object_until_attached()
    {
        var world = new World();
        var b = world.NewProcess(new CoherenceOptions { OutsideScopeReads = OutsideScopeReads.Throw });
        var sheet = new Sheet { Id = 7, Title = "draft" };
        sheet.Title = "edited";
        Assert.Equal("edited", sheet.Title);

        await using FreshScope scope = b.Coherence.BeginScope();
        Assert.Equal("edited", sheet.Title);
        Assert.Equal(0, scope.TrackedCount);
    }

    [Fact]
    public async Task Entities_found_inside_a_scope_are_tracked_and_checked_together()
    {
        var world = new World();
        world.InsertSheet(1, "one");
        world.InsertSheet(2, "two");
        var b = world.NewProcess();
        await using FreshScope scope = b.Coherence.BeginScope();
        Sheet first = b.Sheet(1);
        Sheet second = b.Sheet(2);
        Assert.Equal(2, scope.TrackedCount);
        long batches = world.Store.BatchCount;
        _ = first.Title;
        _ = second.Title;
        Assert.Equal(2, world.Store.BatchCount - batches); // one read batch, one fill batch, for both
    }

    [Fact]
    public void An_entity_of_another_runtime_cannot_be_tracked()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        using FreshScope scope = a.Coherence.BeginScope();
        var wrong = Assert.Throws<InvalidOperationException>(() => scope.Track(inB));
        Assert.Contains("another Coherence", wrong.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => a.Coherence.Attach(inB, a.Db));
    }

    [Fact]
    public async Task A_disposed_scope_refuses_further_work()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet sheet = b.Sheet(1);
        FreshScope scope = b.Coherence.BeginScope();
        await scope.DisposeAsync();
        Assert.False(scope.IsActive);
        Assert.Throws<ObjectDisposedException>(() => scope.Track(sheet));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => scope.CommitAsync());
        await scope.DisposeAsync(); // twice is fine
    }

    [Fact]
    public async Task A_committed_scope_stays_open_and_can_commit_again()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var b = world.NewProcess();
        Sheet sheet = b.Sheet(1);
        await using FreshScope scope = b.Coherence.BeginScope();
        sheet.Title = "Q2";
        await scope.CommitAsync();
        Assert.Equal("Q2", sheet.Title);
        sheet.Title = "Q3";
        await scope.CommitAsync();
        Assert.Equal(3, sheet.Version);
        Assert.Equal("Q3", world.TitleInDatabase(1));
    }

    [Fact]
    public async Task RunInScopeAsync_returns_the_body_result_and_gives_up_after_its_attempts()
    {
        var (world, a, b, inB) = World.TwoProcessesSharingSheet1();
        string title = await b.Coherence.RunInScopeAsync((_, _) => Task.FromResult(inB.Title));
        Assert.Equal("Q1", title);

        int attempts = 0;
        await Assert.ThrowsAsync<StaleEntityException>(() => b.Coherence.RunInScopeAsync(
            async (scope, ct) =>
            {
                attempts++;
                _ = inB.Title;
                await a.Coherence.RunInScopeAsync(
                    (_, _) =>
                    {
                        a.Sheet(1).Title = $"conflict {attempts}";
                        return Task.CompletedTask;
                    },
                    cancellationToken: ct);
                inB.Title = "never lands";
            },
            maxAttempts: 3));
        Assert.Equal(3, attempts);
        Assert.Equal("conflict 3", world.TitleInDatabase(1));
    }
}
