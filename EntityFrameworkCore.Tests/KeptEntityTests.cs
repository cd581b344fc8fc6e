using Microsoft.EntityFrameworkCore;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// The seed's shape through EF Core: an entity loaded by a context that is then disposed, held by the application
/// (a static, a singleton) and read in later scopes. Its checks and reloads run on connections of their own, never
/// through the disposed context. On SQLite (the store in the data file) and on PostgreSQL.
/// </summary>
public abstract class KeptEntityTests : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    protected abstract SqliteSharedStore Store { get; }

    protected virtual DbDialect? Dialect => null;

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        DisposeDatabase();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task An_entity_whose_context_is_disposed_is_reloaded_when_another_process_commits()
    {
        Coherence holder = NewCoherence();
        Coherence other = NewCoherence();
        InsertSheet(other);

        Sheet kept;
        DbContextEntityLoader loader;
        using (SheetContext loading = NewContext(holder))
        {
            await using (holder.BeginScope())
            {
                kept = await loading.Sheets.SingleAsync(s => s.Id == 1);
                Assert.Equal("Q1", kept.Title);
            }

            loader = loading.GetSharedEntityLoader()!;
        }

        for (int round = 2; round <= 4; round++)
        {
            string title = $"Q{round}";
            await RenameAsync(other, title);

            await using (holder.BeginScope())
            {
                Assert.Equal(title, kept.Title); // no ObjectDisposedException: the reload ran on a connection of its own
                Assert.Equal(round, kept.Version);
            }
        }

        Assert.False(loader.ReadsInTransaction);

        // Its reloads read the shared columns only: they offer nothing to the entity cache, which still holds at most the
        // row the loading query read (version 1).
        Assert.True(holder.Cache.Find(holder.StoreKeyOf(kept)) is null or { Version: 1 }, "a reload was offered to the cache");

        // An unchanged row: fresh from the store alone.
        await using (holder.BeginScope())
        {
            Assert.Equal("Q4", kept.Title);
        }
    }

    [Fact]
    public async Task The_reloads_of_a_living_context_are_not_offered_to_the_entity_cache()
    {
        Coherence holder = NewCoherence();
        Coherence other = NewCoherence();
        InsertSheet(other);

        SheetContext living = NewContext(holder);
        _owned.Add(living);
        Sheet held = living.Sheets.Single(s => s.Id == 1);
        await RenameAsync(other, "Q2");

        await using (holder.BeginScope())
        {
            Assert.Equal("Q2", held.Title); // reloaded through the context's loader
        }

        // Only the query's row (version 1) may be cached: the reload offered nothing.
        Assert.True(holder.Cache.Find(holder.StoreKeyOf(held)) is null or { Version: 1 }, "a reload was offered to the cache");
    }

    [Fact]
    public async Task A_kept_entity_that_owns_data_is_refused_a_reload_rather_than_shown_half_old()
    {
        Coherence holder = NewCoherence();
        Coherence other = NewCoherence();
        using (SheetContext seed = NewContext(other))
        {
            seed.Invoices.Add(new Invoice { Id = 1, Version = 1, Number = "I-1", BillingAddress = new Address { Street = "Main", City = "Oslo" } });
            seed.SaveChanges();
        }

        Invoice kept;
        using (SheetContext loading = NewContext(holder))
        {
            kept = loading.Invoices.Single(i => i.Id == 1);
        }

        using (SheetContext writer = NewContext(other))
        {
            await using (other.BeginScope())
            {
                Invoice invoice = writer.Invoices.Single(i => i.Id == 1);
                invoice.Number = "I-2";
                invoice.BillingAddress.City = "Bergen";
                await writer.SaveChangesSharedAsync();
            }
        }

        await using (holder.BeginScope())
        {
            var refused = Assert.Throws<InvalidOperationException>(() => kept.Number);
            Assert.Contains("Invoice 1", refused.Message, StringComparison.Ordinal);
            Assert.Contains("owns data", refused.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_kept_entity_is_written_through_a_new_context()
    {
        Coherence holder = NewCoherence();
        InsertSheet(holder);

        Sheet kept;
        using (SheetContext loading = NewContext(holder))
        {
            kept = loading.Sheets.Single(s => s.Id == 1);
        }

        using (SheetContext writing = NewContext(holder))
        {
            await using (holder.BeginScope())
            {
                writing.Attach(kept);
                kept.Title = "written through a new context";
                await writing.SaveChangesSharedAsync();
            }
        }

        Coherence reader = NewCoherence();
        using SheetContext reading = NewContext(reader);
        await using (reader.BeginScope())
        {
            Sheet read = reading.Sheets.Single(s => s.Id == 1);
            Assert.Equal("written through a new context", read.Title);
            Assert.Equal(2, read.Version);
        }
    }

    protected abstract void Configure(DbContextOptionsBuilder options);

    protected abstract void DisposeDatabase();

    protected SheetContext NewContext(Coherence coherence)
    {
        var options = new DbContextOptionsBuilder<SheetContext>();
        Configure(options);
        return new SheetContext(options.UseSharedEntities(coherence, Dialect).Options);
    }

    protected Coherence NewCoherence()
    {
        var coherence = StoryTests.NewCoherence(Store);
        _owned.Add(coherence);
        return coherence;
    }

    // Sheet 1, "Q1" at version 1.
    private void InsertSheet(Coherence coherence)
    {
        using SheetContext seed = NewContext(coherence);
        seed.Sheets.Add(new Sheet { Id = 1, Title = "Q1", Version = 1 });
        seed.SaveChanges();
    }

    // Another process renames sheet 1 in a context and a scope of its own.
    private async Task RenameAsync(Coherence coherence, string title)
    {
        using SheetContext writer = NewContext(coherence);
        await using FreshScope scope = coherence.BeginScope();
        (await writer.Sheets.SingleAsync(s => s.Id == 1)).Title = title;
        await writer.SaveChangesSharedAsync();
    }

    protected void CreateSchema()
    {
        using SheetContext context = NewContext(StoryTests.NewCoherence(Store));
        context.Database.EnsureCreated();
    }
}

public sealed class SqliteKeptEntityTests : KeptEntityTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;

    public SqliteKeptEntityTests()
    {
        _store = new SqliteSharedStore(ConnectionString); // the embedded store, in the data file
        CreateSchema();
        using SheetContext context = NewContext(StoryTests.NewCoherence(_store));
        context.Database.ExecuteSqlRaw("PRAGMA journal_mode = WAL");
    }

    protected override SqliteSharedStore Store => _store;

    protected override DbDialect? Dialect => SqliteDialect.Instance;

    private string ConnectionString => $"Data Source={_folder.File("app.db")};Default Timeout=5";

    protected override void Configure(DbContextOptionsBuilder options) => options.UseSqlite(ConnectionString);

    protected override void DisposeDatabase() => _folder.Dispose();
}

[Collection(PostgresFixture.Name)]
public sealed class PostgresKeptEntityTests : KeptEntityTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;
    private readonly string _connectionString;

    public PostgresKeptEntityTests(PostgresCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);

        // A database per test (EnsureCreated creates it); the cross-process store: the embedded store in a file of its own.
        _connectionString = cluster.ConnectionString.Replace("Database=postgres", "Database=se_" + Guid.NewGuid().ToString("N")[..12], StringComparison.Ordinal);
        _store = new SqliteSharedStore($"Data Source={_folder.File("tokens.db")}");
        CreateSchema();
    }

    protected override SqliteSharedStore Store => _store;

    protected override void Configure(DbContextOptionsBuilder options) => options.UseNpgsql(_connectionString);

    protected override void DisposeDatabase()
    {
        // Each test has a database, so a pool, of its own: close its idle connections.
        using (var connection = new Npgsql.NpgsqlConnection(_connectionString))
        {
            Npgsql.NpgsqlConnection.ClearPool(connection);
        }

        _folder.Dispose();
    }
}
