using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using SharedEntities.Protocol;
using SharedEntities.Sqlite;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// The seed and Django stories through EF Core: two "processes" (each its own runtime and DbContext) on one SQLite
/// file, with the embedded store in the same file.
/// </summary>
public sealed class SqliteStoryTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;
    private readonly List<IDisposable> _owned = [];

    public SqliteStoryTests()
    {
        _store = new SqliteSharedStore(ConnectionString);
        using SheetContext context = NewContext(new Coherence(_store));
        context.Database.EnsureCreated();
        context.Database.ExecuteSqlRaw("PRAGMA journal_mode = WAL");
    }

    private string ConnectionString => $"Data Source={_folder.File("app.db")};Default Timeout=5";

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _folder.Dispose();
    }

    [Fact]
    public void The_model_maps_shared_properties_to_their_fields_and_the_version_as_a_concurrency_token()
    {
        Proc a = NewProcess();
        IEntityType sheet = a.Context.Model.FindEntityType(typeof(Sheet))!;
        IProperty title = sheet.FindProperty(nameof(Sheet.Title))!;
        Assert.Equal("__shared_Title", title.FieldInfo!.Name);
        Assert.Equal(PropertyAccessMode.Field, title.GetPropertyAccessMode());
        Assert.True(sheet.FindProperty(nameof(Sheet.Version))!.IsConcurrencyToken);
    }

    [Fact]
    public async Task Seed_story_a_rename_is_seen_by_the_next_scope_and_a_delete_is_noticed()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB;
        await using (b.Coherence.BeginScope())
        {
            inB = b.Context.Sheets.Single(s => s.Id == 1);
            Assert.Equal("Q1", inB.Title);
        }

        await using (a.Coherence.BeginScope())
        {
            Sheet inA = await a.Context.Sheets.SingleAsync(s => s.Id == 1);
            inA.Title = "Q2";
            await a.Context.SaveChangesSharedAsync();
            Assert.Equal(2, inA.Version);
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
            Assert.Equal(2, inB.Version);
        }

        Assert.False(b.Context.ChangeTracker.HasChanges()); // the reload is not a change to save

        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Remove(a.Context.Sheets.Single(s => s.Id == 1));
            a.Context.SaveChangesShared();
        }

        Assert.Equal(SharedToken.Tombstone.Value, _store.Peek(a.Coherence.StoreKeyOf(inB)));
        await using (b.Coherence.BeginScope())
        {
            Assert.Throws<EntityDeletedException>(() => inB.Title);
        }
    }

    [Fact]
    public async Task Django_story_a_long_recalculation_is_refused_instead_of_overwriting()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");

        FreshScope recalculation = b.Coherence.BeginScope();
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
        Assert.Equal("Q1", inB.Title);

        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
            await a.Context.SaveChangesSharedAsync();
        }

        inB.Title = "recalculated by B";
        StaleEntityException refused = await Assert.ThrowsAsync<StaleEntityException>(() => b.Context.SaveChangesSharedAsync());
        Assert.Equal("Sheet", refused.EntityName);
        Assert.Equal(1, refused.Key);
        Assert.Equal(1, refused.LocalVersion);
        Assert.IsType<DbUpdateConcurrencyException>(refused.InnerException);
        Assert.Equal(1, inB.Version); // the version SaveChanges tried is given back
        await recalculation.DisposeAsync();

        Assert.Equal(("from A", 2L), ReadRow(1));

        // The retry: a new scope reloads B's copy (discarding the refused write), and B's next save goes through.
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("from A", inB.Title);
            Assert.False(b.Context.ChangeTracker.HasChanges());
            inB.Title = "recalculated again by B";
            await b.Context.SaveChangesSharedAsync();
        }

        Assert.Equal(("recalculated again by B", 3L), ReadRow(1));
    }

    [Fact]
    public async Task A_delete_based_on_an_old_copy_is_refused_too()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
            await a.Context.SaveChangesSharedAsync();
        }

        b.Context.Sheets.Remove(inB);
        StaleEntityException refused = Assert.Throws<StaleEntityException>(() => b.Context.SaveChangesShared());
        Assert.Contains("delete", refused.Message, StringComparison.Ordinal);
        Assert.Equal(("from A", 2L), ReadRow(1));
    }

    [Fact]
    public async Task Django_story_inside_a_deferred_transaction_that_has_read_gets_the_stale_snapshot_exception()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);

        // A deferred transaction takes its WAL snapshot at its first read: SQLite's REPEATABLE READ.
        b.Context.Database.OpenConnection();
        var connection = (SqliteConnection)b.Context.Database.GetDbConnection();
        using (SqliteTransaction snapshot = connection.BeginTransaction(deferred: true))
        {
            b.Context.Database.UseTransaction(snapshot);
            Assert.Equal(1, b.Context.Sheets.AsNoTracking().Count());

            await using (a.Coherence.BeginScope())
            {
                a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
                await a.Context.SaveChangesSharedAsync();
            }

            await using (b.Coherence.BeginScope())
            {
                StaleSnapshotException stale = Assert.Throws<StaleSnapshotException>(() => inB.Title);
                Assert.Equal("Sheet", stale.EntityName);
                Assert.Contains("Commit or roll back", stale.Message, StringComparison.Ordinal);
            }

            snapshot.Rollback();
            b.Context.Database.UseTransaction(null);
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("from A", inB.Title);
        }
    }

    [Fact]
    public async Task A_rollback_publishes_nothing_and_the_writer_reloads_its_copy()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = WarmUp(b);
        string key = b.Coherence.StoreKeyOf(inB);
        long? before = _store.Peek(key);
        Assert.Equal(SharedToken.Clean(1).Value, before);

        Sheet inA = a.Context.Sheets.Single(s => s.Id == 1);
        await using (a.Coherence.BeginScope())
        {
            using (var transaction = a.Context.Database.BeginTransaction())
            {
                inA.Title = "never committed";
                await a.Context.SaveChangesSharedAsync();
                Assert.Equal(2, inA.Version);
                transaction.Rollback();
            }

            Assert.Equal(before, _store.Peek(key));
            Assert.Equal(1, inA.Version);
        }

        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inA.Title); // reloaded: the rolled-back value is gone
            Assert.False(a.Context.ChangeTracker.HasChanges());
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title);
        }

        Assert.Equal(("Q1", 1L), ReadRow(1));
    }

    [Fact]
    public async Task A_save_inside_an_application_transaction_is_published_only_after_its_commit()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Insert(a, 2, "other");
        Sheet inB = WarmUp(b);
        string key = b.Coherence.StoreKeyOf(inB);

        await using (a.Coherence.BeginScope())
        {
            await using (var transaction = await a.Context.Database.BeginTransactionAsync())
            {
                a.Context.Sheets.Single(s => s.Id == 1).Title = "Q2";
                await a.Context.SaveChangesSharedAsync();
                a.Context.Sheets.Single(s => s.Id == 2).Title = "other 2";
                await a.Context.SaveChangesSharedAsync();
                Assert.Equal(SharedToken.Clean(1).Value, _store.Peek(key));
                await transaction.CommitAsync();
            }
        }

        Assert.Equal(SharedToken.Clean(2).Value, _store.Peek(key));
        Assert.Equal(SharedToken.Clean(2).Value, _store.Peek(key.Replace(":1", ":2", StringComparison.Ordinal)));
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
        }
    }

    [Fact]
    public void A_synchronous_save_without_a_transaction_raises_and_publishes()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = WarmUp(b);
        using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 1).Title = "Q2";
            Assert.Equal(1, a.Context.SaveChanges());
        }

        Assert.Equal(SharedToken.Clean(2).Value, _store.Peek(b.Coherence.StoreKeyOf(inB)));
        using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
        }
    }

    [Fact]
    public async Task A_lease_fill_runs_inside_the_loaders_locking_transaction_on_the_same_file()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        foreach (bool async in new[] { false, true })
        {
            Proc b = NewProcess();
            Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
            string key = b.Coherence.StoreKeyOf(inB);
            _store.Evict(key);
            await using (FreshScope scope = b.Coherence.BeginScope())
            {
                if (async)
                {
                    await scope.CheckAsync([inB]);
                }

                Assert.Equal("Q1", inB.Title);
            }

            Assert.Equal(SharedToken.Clean(1).Value, _store.Peek(key));
        }
    }

    [Fact]
    public async Task Many_stale_entities_reload_in_one_query()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        for (int id = 1; id <= 20; id++)
        {
            a.Context.Sheets.Add(new Sheet { Id = id, Title = "v1" });
        }

        a.Context.SaveChanges();
        List<Sheet> inB;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            inB = await b.Context.Sheets.ToListAsync();
            await scope.CheckAsync(inB);
        }

        await using (a.Coherence.BeginScope())
        {
            foreach (Sheet sheet in a.Context.Sheets)
            {
                sheet.Title = "v2";
            }

            await a.Context.SaveChangesSharedAsync();
        }

        DbContextEntityLoader loader = b.Context.GetSharedEntityLoader()!;
        int before = loader.Statements;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            await scope.CheckAsync(inB);
            Assert.All(inB, s => Assert.Equal("v2", s.Title));
        }

        Assert.Equal(1, loader.Statements - before);
        Assert.False(b.Context.ChangeTracker.HasChanges());
    }

    [Fact]
    public async Task A_scope_commit_tells_the_user_to_save_through_the_context()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        await using FreshScope scope = a.Coherence.BeginScope();
        a.Context.Sheets.Single(s => s.Id == 1).Title = "x";
        NotSupportedException refused = await Assert.ThrowsAsync<NotSupportedException>(() => scope.CommitAsync());
        Assert.Contains("SaveChanges", refused.Message, StringComparison.Ordinal);
    }

    private static Sheet WarmUp(Proc process)
    {
        using (process.Coherence.BeginScope())
        {
            Sheet sheet = process.Context.Sheets.Single(s => s.Id == 1);
            Assert.NotNull(sheet.Title);
            return sheet;
        }
    }

    private (string Title, long Version) ReadRow(int id)
    {
        using var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "SELECT Title, Version FROM sheets WHERE Id = $id";
        command.Parameters.AddWithValue("$id", id);
        using SqliteDataReader reader = command.ExecuteReader();
        Assert.True(reader.Read());
        return (reader.GetString(0), reader.GetInt64(1));
    }

    private static void Insert(Proc process, int id, string title)
    {
        process.Context.Sheets.Add(new Sheet { Id = id, Title = title });
        process.Context.SaveChanges();
    }

    private SheetContext NewContext(Coherence coherence) =>
        new(new DbContextOptionsBuilder<SheetContext>().UseSqlite(ConnectionString).UseSharedEntities(coherence).Options);

    private Proc NewProcess()
    {
        var coherence = new Coherence(_store);
        SheetContext context = NewContext(coherence);
        _owned.Add(coherence);
        _owned.Add(context);
        return new Proc(coherence, context);
    }

    private sealed record Proc(Coherence Coherence, SheetContext Context);
}
