using SharedEntities.Protocol;

namespace SharedEntities.Tests;

/// <summary>The seed-compatible mode: no version column, a serial in the store.</summary>
public sealed class SerialOnlyProtocolTests
{
    private static (World World, Process A, Process B) Setup()
    {
        var world = new World();
        world.Database.Insert(new Note { Id = "n1", Text = "first" });
        return (world, world.NewProcess(), world.NewProcess());
    }

    [Fact]
    public async Task An_update_is_seen_by_the_other_process()
    {
        var (world, a, b) = Setup();
        Note inA = a.Db.Find<Note>("n1")!;
        Note inB = b.Db.Find<Note>("n1")!;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("first", inB.Text);
        }

        await using (FreshScope scope = a.Coherence.BeginScope())
        {
            inA.Text = "second";
            await scope.CommitAsync();
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("second", inB.Text);
        }

        Assert.Equal("second", world.Database.ValueOf("note", "n1", 0));
    }

    [Fact]
    public async Task A_miss_is_never_fresh_a_random_serial_is_seeded_and_the_entity_reloads()
    {
        var (world, _, b) = Setup();
        Note inB = b.Db.Find<Note>("n1")!;
        string key = b.Coherence.StoreKeyOf(inB);
        Assert.Equal("note:n1", key);

        int queries = b.Db.Queries;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("first", inB.Text);
        }

        Assert.Equal(1, b.Db.Queries - queries);
        long seeded = world.Store.Peek(key) ?? throw new Xunit.Sdk.XunitException("no serial was seeded");
        Assert.InRange(seeded, 1, (1L << 62) - 1);

        // Equal serials: fresh without the database.
        queries = b.Db.Queries;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("first", inB.Text);
        }

        Assert.Equal(0, b.Db.Queries - queries);

        // A restarted store forgets the serial: the next check must not take the copy as fresh.
        world.Store.Clear();
        world.Database.WriteBypassingLibrary("note", "n1", 0, "changed while the store was down", bumpVersion: false);
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("changed while the store was down", inB.Text);
        }

        Assert.NotEqual(seeded, world.Store.Peek(key));
    }

    [Fact]
    public async Task Bumps_from_parallel_writers_are_atomic()
    {
        var (world, a, _) = Setup();
        Note seed = a.Db.Find<Note>("n1")!;
        await using (a.Coherence.BeginScope())
        {
            _ = seed.Text;
        }

        string key = a.Coherence.StoreKeyOf(seed);
        long start = world.Store.Peek(key)!.Value;
        const int writers = 8;
        const int bumps = 50;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var process = world.NewProcess();
            Note note = process.Db.Find<Note>("n1")!;
            for (int i = 0; i < bumps; i++)
            {
                await using FreshScope scope = process.Coherence.BeginScope();
                note.Text = $"writer {w} bump {i}";
                await scope.CommitAsync();
            }
        })));

        Assert.Equal(start + (writers * bumps), world.Store.Peek(key));
    }

    [Fact]
    public async Task A_delete_leaves_a_tombstone_the_other_process_notices()
    {
        var (world, a, b) = Setup();
        Note inA = a.Db.Find<Note>("n1")!;
        Note inB = b.Db.Find<Note>("n1")!;
        await a.CommitAsync(scope => scope.Delete(inA));

        Assert.Equal(SharedToken.Tombstone.Value, world.Store.Peek("note:n1"));
        await using (b.Coherence.BeginScope())
        {
            Assert.Throws<EntityDeletedException>(() => inB.Text);
        }
    }

    [Fact]
    public async Task A_writer_whose_bump_was_not_the_next_serial_reloads_at_its_next_check()
    {
        // Two writers' increments may land in the other order than their commits. A writer whose increment did not
        // follow its own serial directly cannot know whose row is in the database, so it must not keep its copy.
        var (world, a, b) = Setup();
        Note inA = a.Db.Find<Note>("n1")!;
        Note inB = b.Db.Find<Note>("n1")!;
        await using (a.Coherence.BeginScope())
        {
            _ = inA.Text;
        }

        await using (b.Coherence.BeginScope())
        {
            _ = inB.Text;
        }

        await using (FreshScope scopeB = b.Coherence.BeginScope())
        {
            inB.Text = "B";
            await scopeB.CommitAsync();
        }

        await using (FreshScope scopeA = a.Coherence.BeginScope())
        {
            inA.Text = "A";
            await scopeA.CommitAsync();
        }

        // Say B's row write was the one that landed last: A's next check must go to the database to find out.
        world.Database.WriteBypassingLibrary("note", "n1", 0, "B", bumpVersion: false);
        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("B", inA.Text);
        }
    }
}
