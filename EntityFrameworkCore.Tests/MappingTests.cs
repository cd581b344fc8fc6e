using Microsoft.EntityFrameworkCore;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// EF Core mappings of shared entities (docs/efcore.md, "Mappings"): each is either reloaded correctly after another
/// process's change, with EF Core's own conversions, or refused when the context is built, with a message that names
/// the type, the property and the fix. Two "processes" (each its own runtime and context) on one SQLite file and its
/// embedded store.
/// </summary>
public sealed class MappingTests : IDisposable
{
    // The entity cache refuses these (they are read from the database on every miss): the reloads are under test here.
    private static readonly string[] NotCached = [nameof(Member), nameof(Sheet), nameof(Badge), nameof(Parcel), nameof(Folder)];

    private readonly TempFolder _folder = new();
    private readonly List<IDisposable> _owned = [];
    private readonly SqliteSharedStore _store;
    private readonly Dictionary<DbContext, Coherence> _runtimes = [];

    public MappingTests() => _store = new SqliteSharedStore(ConnectionString);

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
    public async Task Value_converters_and_DateOnly_are_reloaded_as_EF_Core_reads_them()
    {
        (MappingContext a, MappingContext b) = Processes<MappingContext>(o => new MappingContext(o));
        await SaveAsync(a, new Member { Id = 1, Version = 1, Email = new("ann@example.org"), Roles = ["reader"], JoinedOn = new DateOnly(2024, 1, 31) });

        Member inB = await ReadAsync(b, () => b.Members.SingleAsync(m => m.Id == 1), m => m.Email);
        await ChangeAsync(a, () => a.Members.SingleAsync(m => m.Id == 1), m =>
        {
            m.Email = new("ann@example.com");
            m.Roles = ["reader", "editor"];
            m.JoinedOn = new DateOnly(2025, 12, 24);
        });

        await using (Runtime(b).BeginScope())
        {
            Assert.Equal(new EmailAddress("ann@example.com"), inB.Email);
            Assert.Equal(["reader", "editor"], inB.Roles);
            Assert.Equal(new DateOnly(2025, 12, 24), inB.JoinedOn);
            Assert.Equal(2, inB.Version);
        }

        await AssertSavesAfterReloadAsync(b, inB, m => m.Roles = [.. m.Roles, "admin"], 3);
        await using (Runtime(a).BeginScope())
        {
            Member inA = await a.Members.SingleAsync(m => m.Id == 1);
            Assert.Equal(["reader", "editor", "admin"], inA.Roles); // written through the converter by EF Core, reloaded through it
        }
    }

    [Fact]
    public async Task An_entity_of_a_TPH_subclass_is_reloaded_through_its_shared_class()
    {
        (MappingContext a, MappingContext b) = Processes<MappingContext>(o => new MappingContext(o));
        await SaveAsync(a, new ArchivedSheet { Id = 1, Version = 1, Title = "Q1", ArchivedAt = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc) });
        await SaveAsync(a, new Sheet { Id = 2, Version = 1, Title = "S1" });

        Sheet archived = await ReadAsync(b, () => b.Sheets.SingleAsync(s => s.Id == 1), s => s.Title);
        Sheet plain = await ReadAsync(b, () => b.Sheets.SingleAsync(s => s.Id == 2), s => s.Title);
        Assert.IsType<ArchivedSheet>(archived);
        await ChangeAsync(a, () => a.Sheets.SingleAsync(s => s.Id == 1), s => s.Title = "Q2");
        await ChangeAsync(a, () => a.Sheets.SingleAsync(s => s.Id == 2), s => s.Title = "S2");

        await using (Runtime(b).BeginScope())
        {
            Assert.Equal("Q2", archived.Title); // one check and one reload for both classes
            Assert.Equal("S2", plain.Title);
        }

        await AssertSavesAfterReloadAsync(b, archived, s => s.Title = "Q3", 3);
    }

    [Fact]
    public async Task An_entity_without_a_parameterless_constructor_and_one_with_a_complex_value_are_reloaded()
    {
        (MappingContext a, MappingContext b) = Processes<MappingContext>(o => new MappingContext(o));
        await SaveAsync(a, new Badge(1) { Version = 1, Label = "gold" });
        await SaveAsync(a, new Parcel { Id = 1, Version = 1, Label = "p1", Size = new Size { Width = 2, Height = 3 } });

        Badge badge = await ReadAsync(b, () => b.Badges.SingleAsync(x => x.Id == 1), x => x.Label);
        Parcel parcel = await ReadAsync(b, () => b.Parcels.SingleAsync(x => x.Id == 1), x => x.Label);
        await ChangeAsync(a, () => a.Badges.SingleAsync(x => x.Id == 1), x => x.Label = "platinum");
        await ChangeAsync(a, () => a.Parcels.SingleAsync(x => x.Id == 1), x => x.Label = "p2");

        await using (Runtime(b).BeginScope())
        {
            Assert.Equal("platinum", badge.Label);
            Assert.Equal("p2", parcel.Label);
            Assert.Equal(2, parcel.Size.Width); // a complex value is not shared: it stays as read
        }

        await AssertSavesAfterReloadAsync(b, badge, x => x.Label = "diamond", 3);
    }

    [Fact]
    public async Task A_lazy_loading_proxy_is_reloaded_through_its_class()
    {
        (ProxyContext a, ProxyContext b) = Processes<ProxyContext>(o => new ProxyContext(o), proxies: true);
        await SaveAsync(a, new Folder { Id = 1, Version = 1, Name = "inbox" });

        Folder folder = await ReadAsync(b, () => b.Folders.SingleAsync(f => f.Id == 1), f => f.Name);
        Assert.NotEqual(typeof(Folder), folder.GetType()); // Castle's proxy class
        await ChangeAsync(a, () => a.Folders.SingleAsync(f => f.Id == 1), f => f.Name = "archive");

        await using (Runtime(b).BeginScope())
        {
            Assert.Equal("archive", folder.Name);
            Assert.Empty(folder.Items); // still a proxy: lazy loading works
        }

        await AssertSavesAfterReloadAsync(b, folder, f => f.Name = "old", 3);
    }

    public static TheoryData<string, string[]> Refused => new()
    {
        // the model, what the message must name
        { "complex", ["Crate.Size is shared (partial) but EF Core maps it as a complex property", "make Size a plain (non-partial) property"] },
        { "key", ["Ticket.Id, the key, has a value converter (TicketId to Int32)", "map Id as a plain Int32"] },
        { "tpc", ["Sheet is in a TPC hierarchy", "as TPH (the default) or TPT"] },
        { "view", ["Sheet is not mapped to a table (ToView, ToSqlQuery or ToFunction)", "map Sheet to its table (ToTable)"] },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_mapping_that_cannot_be_reloaded_is_refused_when_the_context_is_built(string model, string[] expected)
    {
        using var coherence = new Coherence(new InMemorySharedStore());
        using DbContext context = model switch
        {
            "complex" => new ComplexSharedContext(Options<ComplexSharedContext>(coherence)),
            "key" => new ConvertedKeyContext(Options<ConvertedKeyContext>(coherence)),
            "tpc" => new TpcContext(Options<TpcContext>(coherence)),
            _ => new ViewContext(Options<ViewContext>(coherence)),
        };

        // The first use builds the model: nothing has been read or written yet.
        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(() => context.Model);
        Assert.StartsWith("SharedEntities cannot reload these mappings when another process changes a row:", refused.Message, StringComparison.Ordinal);
        foreach (string part in expected)
        {
            Assert.Contains(part, refused.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_table_without_the_version_column_is_reported_naming_the_migration_to_add()
    {
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection(ConnectionString))
        {
            connection.Open();
            using var create = connection.CreateCommand();
            create.CommandText = "CREATE TABLE \"sheets\" (\"Id\" INTEGER PRIMARY KEY, \"Title\" TEXT NOT NULL); INSERT INTO \"sheets\" VALUES (1, 'Q1')";
            create.ExecuteNonQuery();
        }

        // EF Core's own query, and the runtime's ADO.NET loader.
        using Coherence coherence = StoryTests.NewCoherence(_store);
        using var context = new SheetContext(new DbContextOptionsBuilder<SheetContext>().UseSqlite(ConnectionString).UseSharedEntities(coherence, SqliteDialect.Instance).Options);
        MissingColumnException fromQuery;
        await using (coherence.BeginScope())
        {
            fromQuery = await Assert.ThrowsAsync<MissingColumnException>(() => context.Sheets.SingleAsync(s => s.Id == 1));
        }

        using var plain = new Microsoft.Data.Sqlite.SqliteConnection(ConnectionString);
        var loader = new AdoNet.DbEntityLoader(coherence, plain, SqliteDialect.Instance, AdoNet.DbEntityMapping.For<Sheet>("sheets"));
        MissingColumnException fromLoader;
        await using (coherence.BeginScope())
        {
            fromLoader = await Assert.ThrowsAsync<MissingColumnException>(() => loader.FindAsync<Sheet>(1));
        }

        foreach (MissingColumnException missing in new[] { fromQuery, fromLoader })
        {
            Assert.Contains("The table sheets lacks a column that SharedEntities reads for Sheet (", missing.Message, StringComparison.Ordinal);
            Assert.Contains("no such column", missing.Message, StringComparison.Ordinal); // the database's own words
            Assert.Contains("It reads Id, Version, Title.", missing.Message, StringComparison.Ordinal);
            Assert.Contains("dotnet ef migrations add AddSheetVersion", missing.Message, StringComparison.Ordinal);
            Assert.Contains("ALTER TABLE sheets ADD Version bigint NOT NULL DEFAULT 1", missing.Message, StringComparison.Ordinal);
            Assert.IsAssignableFrom<System.Data.Common.DbException>(missing.InnerException);
        }
    }

    [Fact]
    public void Without_SharedEntities_the_same_models_build()
    {
        using var complex = new ComplexSharedContext(Options<ComplexSharedContext>(null));
        using var view = new ViewContext(Options<ViewContext>(null));
        Assert.NotNull(complex.Model.FindEntityType(typeof(Crate)));
        Assert.NotNull(view.Model.FindEntityType(typeof(Sheet)));
    }

    private DbContextOptions<T> Options<T>(Coherence? coherence)
        where T : DbContext
    {
        var builder = new DbContextOptionsBuilder<T>().UseSqlite(ConnectionString);
        return (coherence is null ? builder : builder.UseSharedEntities(coherence, SqliteDialect.Instance)).Options;
    }

    private (T A, T B) Processes<T>(Func<DbContextOptions<T>, T> create, bool proxies = false)
        where T : DbContext
    {
        T New()
        {
            var options = new CoherenceOptions();
            options.EntityCache.ExcludedEntities.UnionWith(NotCached);
            var coherence = new Coherence(_store, options);
            _owned.Add(coherence);
            var builder = new DbContextOptionsBuilder<T>().UseSqlite(ConnectionString).UseSharedEntities(coherence, SqliteDialect.Instance);
            if (proxies)
            {
                builder.UseLazyLoadingProxies();
            }

            T context = create(builder.Options);
            _owned.Add(context);
            _runtimes.Add(context, coherence);
            return context;
        }

        T a = New();
        a.Database.EnsureCreated();
        return (a, New());
    }

    private Coherence Runtime(DbContext context) => _runtimes[context];

    private async Task SaveAsync(DbContext context, object entity)
    {
        await using (Runtime(context).BeginScope())
        {
            context.Add(entity);
            await context.SaveChangesSharedAsync();
        }
    }

    private async Task<T> ReadAsync<T>(DbContext context, Func<Task<T>> load, Func<T, object> touch)
    {
        await using (Runtime(context).BeginScope())
        {
            T entity = await load();
            Assert.NotNull(touch(entity));
            return entity;
        }
    }

    private async Task ChangeAsync<T>(DbContext context, Func<Task<T>> load, Action<T> change)
    {
        await using (Runtime(context).BeginScope())
        {
            change(await load());
            await context.SaveChangesSharedAsync();
        }
    }

    // The reload is not a change to save, and the reloaded entity saves on top of the other process's write.
    private async Task AssertSavesAfterReloadAsync<T>(DbContext context, T entity, Action<T> change, long version)
        where T : class, IVersionedSharedEntity
    {
        Assert.False(context.ChangeTracker.HasChanges());
        await using (Runtime(context).BeginScope())
        {
            change(entity);
            await context.SaveChangesSharedAsync();
        }

        Assert.Equal(version, entity.SharedVersion);
    }
}
