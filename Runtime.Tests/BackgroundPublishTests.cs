using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Tests;

/// <summary><see cref="CoherenceOptions.PublishInBackground"/>: the commit returns before its publish lands, and nothing is accepted stale meanwhile.</summary>
public sealed class BackgroundPublishTests
{
    [Fact]
    public async Task A_commit_returns_before_its_publish_and_readers_ask_the_database_until_it_lands()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var gated = new GatedPublishStore(world.Store);
        using var writer = new Coherence(gated, new CoherenceOptions { PublishInBackground = true });
        var writerDb = world.Database.Connect(writer);
        var reader = world.NewProcess();
        Sheet inReader = reader.Sheet(1);
        await reader.ReadInScopeAsync(inReader);
        string key = reader.Coherence.StoreKeyOf(inReader);

        await writer.RunInScopeAsync((_, _) =>
        {
            writerDb.Find<Sheet>(1)!.Title = "Q2";
            return Task.CompletedTask;
        });

        // Committed; its publish waits at the gate: the dirty token is up, so the reader asks the database.
        Assert.Equal(SharedToken.Dirty(2).Value, world.Store.Peek(key));
        Task published = writer.PublishedAsync();
        Assert.False(published.IsCompleted);
        await using (reader.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inReader.Title);
        }

        gated.Open();
        await published.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(key));
    }

    [Fact]
    public async Task A_later_write_that_overtakes_a_slow_publish_is_not_undone_by_it()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var gated = new GatedPublishStore(world.Store);
        using var writer = new Coherence(gated, new CoherenceOptions { PublishInBackground = true });
        var writerDb = world.Database.Connect(writer);
        Task Rename(string title) => writer.RunInScopeAsync((_, _) =>
        {
            writerDb.Find<Sheet>(1)!.Title = title;
            return Task.CompletedTask;
        });

        await Rename("Q2"); // its publish of clean(2) is held back
        var other = world.NewProcess();
        await other.RenameAsync(1, "Q3");
        gated.Open();
        await writer.PublishedAsync().WaitAsync(TimeSpan.FromSeconds(10));

        // The late publish expected dirty(2) and found clean(3): it wrote nothing.
        Assert.Equal(SharedToken.Clean(3).Value, world.Store.Peek(writer.StoreKeyOf(new Sheet { Id = 1 })));
        var fresh = world.NewProcess();
        Sheet sheet = fresh.Sheet(1);
        await using (fresh.Coherence.BeginScope())
        {
            Assert.Equal("Q3", sheet.Title);
        }
    }

    /// <summary>Holds every batch that publishes until <see cref="Open"/> is called.</summary>
    private sealed class GatedPublishStore(ISharedStore inner) : ISharedStore
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _gate.TrySetResult();

        public void Execute(StoreBatch batch)
        {
            if (IsPublish(batch))
            {
                _gate.Task.Wait();
            }

            inner.Execute(batch);
        }

        public async ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default)
        {
            if (IsPublish(batch))
            {
                await _gate.Task.WaitAsync(cancellationToken);
            }

            await inner.ExecuteAsync(batch, cancellationToken);
        }

        private static bool IsPublish(StoreBatch batch) => batch.Operations.Any(o => o.Kind == StoreOperationKind.Publish);
    }
}
