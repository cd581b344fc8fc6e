namespace SharedEntities.Tests;

/// <summary>
/// One entity instance held across requests (a static, a singleton): it serves one flow at a time. A scope of another
/// flow that touches it while the holder's scope is open is refused; nested scopes, tasks started inside a scope and
/// scopes one after the other share it as before.
/// </summary>
public sealed class HeldEntityTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_scope_of_another_flow_is_refused_while_the_holder_scope_is_open_and_served_after_it_ends()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process process = world.NewProcess();
        Sheet held = process.Sheet(1);
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Both flows start here, outside every scope: neither is inside the other's.
        Task holder = Task.Run(async () =>
        {
            await using FreshScope scope = process.Coherence.BeginScope();
            Assert.Equal("Q1", held.Title);
            holding.SetResult();
            await release.Task;
        });
        Task<InvalidOperationException> other = Task.Run(async () =>
        {
            await holding.Task;
            await using FreshScope scope = process.Coherence.BeginScope();
            return Assert.Throws<InvalidOperationException>(() => held.Title);
        });

        InvalidOperationException refused = await other.WaitAsync(Bound);
        Assert.Contains("Sheet 1", refused.Message, StringComparison.Ordinal);
        Assert.Contains("another flow", refused.Message, StringComparison.Ordinal);
        Assert.Contains("find it by key", refused.Message, StringComparison.Ordinal);

        // A write is refused the same way, and changes nothing the holder sees.
        await Task.Run(async () =>
        {
            await using FreshScope scope = process.Coherence.BeginScope();
            Assert.Throws<InvalidOperationException>(() => held.Title = "from the other flow");
        }).WaitAsync(Bound);

        release.SetResult();
        await holder.WaitAsync(Bound);

        // The holder's scope is disposed: it let go of the entity, and the next flow's scope takes it.
        string read = await Task.Run(async () =>
        {
            await using FreshScope scope = process.Coherence.BeginScope();
            return held.Title;
        }).WaitAsync(Bound);
        Assert.Equal("Q1", read);
    }

    [Fact]
    public async Task Of_two_flows_that_find_an_instance_free_exactly_one_takes_it()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process process = world.NewProcess();
        Sheet held = process.Sheet(1);
        for (int round = 0; round < 200; round++)
        {
            using var start = new Barrier(2);
            using var end = new Barrier(2);
            Task<bool>[] flows = [.. Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            {
                using FreshScope scope = process.Coherence.BeginScope();
                Assert.True(start.SignalAndWait(Bound));
                bool took;
                try
                {
                    took = held.Title == "Q1";
                }
                catch (InvalidOperationException)
                {
                    took = false;
                }

                Assert.True(end.SignalAndWait(Bound)); // both scopes stay open until both have tried
                return took;
            }))];
            bool[] took = await Task.WhenAll(flows).WaitAsync(Bound);
            Assert.Equal(1, took.Count(t => t));
        }
    }

    [Fact]
    public async Task Nested_scopes_tasks_started_in_a_scope_and_scopes_one_after_the_other_share_the_instance()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process process = world.NewProcess();
        Sheet held = process.Sheet(1);

        await using (FreshScope outer = process.Coherence.BeginScope())
        {
            Assert.Equal("Q1", held.Title);

            // A nested scope takes it over, and the outer scope gets it back after it.
            await using (process.Coherence.BeginScope())
            {
                Assert.Equal("Q1", held.Title);
            }

            Assert.Equal("Q1", held.Title);

            // A task started inside the scope reads in it; one that begins its own scope nests in it.
            Assert.Equal("Q1", await Task.Run(() => held.Title).WaitAsync(Bound));
            string nested = await Task.Run(async () =>
            {
                await using FreshScope inner = process.Coherence.BeginScope();
                return held.Title;
            }).WaitAsync(Bound);
            Assert.Equal("Q1", nested);
            Assert.Equal("Q1", held.Title);

            // The outer scope may track it while an inner scope of the same flow holds it.
            await using (process.Coherence.BeginScope())
            {
                _ = held.Title;
                outer.Track(held);
            }

            Assert.Equal("Q1", held.Title);
        }

        // Scopes one after the other, each in a flow of its own, and a commit in one of them.
        for (int i = 0; i < 3; i++)
        {
            string title = $"v{i}";
            await Task.Run(() => process.Coherence.RunInScopeAsync((_, _) =>
            {
                held.Title = title;
                return Task.CompletedTask;
            })).WaitAsync(Bound);
        }

        Assert.Equal("v2", world.TitleInDatabase(1));
    }

    [Fact]
    public async Task A_task_started_in_a_scope_is_refused_while_a_nested_scope_of_the_starting_flow_holds_the_instance()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process process = world.NewProcess();
        Sheet held = process.Sheet(1);
        await using FreshScope outer = process.Coherence.BeginScope();
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<Exception> task = Task.Run(async () =>
        {
            await go.Task;
            return Record.Exception(() => held.Title)!; // in the outer scope, concurrently with the nested one
        });

        await using (process.Coherence.BeginScope())
        {
            Assert.Equal("Q1", held.Title);
            go.SetResult();
            Assert.IsType<InvalidOperationException>(await task.WaitAsync(Bound));
        }

        Assert.Equal("Q1", held.Title);
    }
}
