using Microsoft.EntityFrameworkCore;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// Models whose cached entity types the entity cache cannot materialize faithfully are refused on the context's first
/// use (here its first query), naming the entity, the feature, why and the fix; excluding the entity by name is the fix.
/// </summary>
public sealed class EntityCacheRefusalTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public static TheoryData<string, string, string> Refused => new()
    {
        // kind, entity name, what the message says of the feature
        { "owned", "Invoice", "it owns BillingAddress (Address), an owned navigation" },
        { "complex", "Parcel", "it has the complex property Size (Size; ComplexProperty or [ComplexType])" },
        { "constructor", "Badge", "it has no parameterless constructor: EF Core binds a constructor with parameters (Id)" },
        { "proxy", "Folder", "EF Core creates it as a proxy" },
        { "converter", "Tagged", "its property Labels (List`1) holds a mutable value that EF Core snapshots by reference" },
        { "filter", "Sheet", "it has a global query filter (HasQueryFilter)" },
        { "hierarchy", "Sheet", "it is part of the inheritance hierarchy of Sheet (TPH, TPT or TPC)" },
    };

    public void Dispose() => _folder.Dispose();

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_type_the_cache_cannot_serve_is_refused_on_first_use_and_excluding_it_is_the_fix(string kind, string entityName, string feature)
    {
        using (var coherence = new Coherence(new InMemorySharedStore()))
        using (DbContext context = NewContext(kind, coherence, "refused.db"))
        {
            InvalidOperationException refused = Assert.Throws<InvalidOperationException>(() => FirstUse(kind, context));
            Assert.Contains("SharedEntities cannot serve ", refused.Message, StringComparison.Ordinal);
            Assert.Contains($"(entity name \"{entityName}\") from its entity cache", refused.Message, StringComparison.Ordinal);
            Assert.Contains(feature, refused.Message, StringComparison.Ordinal);
            Assert.Contains($"options.EntityCache.ExcludedEntities.Add(\"{entityName}\")", refused.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidOperationException>(() => FirstUse(kind, context)); // every use, until the options change
        }

        var options = new CoherenceOptions();
        options.EntityCache.ExcludedEntities.Add(entityName);
        using (var coherence = new Coherence(new InMemorySharedStore(), options))
        using (DbContext context = NewContext(kind, coherence, "excluded.db"))
        {
            context.Database.EnsureCreated();
            FirstUse(kind, context); // a query and a read by key: from the database, as before
        }
    }

    [Fact]
    public void A_type_left_out_of_the_included_entities_is_not_refused_either()
    {
        var options = new CoherenceOptions();
        options.EntityCache.IncludedEntities.Add(nameof(Sheet));
        using var coherence = new Coherence(new InMemorySharedStore(), options);
        using DbContext context = NewContext("owned", coherence, "included.db");
        context.Database.EnsureCreated();
        FirstUse("owned", context);
    }

    [Fact]
    public void A_refused_model_is_refused_before_its_first_statement_even_by_a_save()
    {
        using var coherence = new Coherence(new InMemorySharedStore());
        using DbContext context = NewContext("complex", coherence, "save.db");
        context.Add(new Parcel { Id = 1, Version = 1, Label = "p" });
        InvalidOperationException refused = Assert.Throws<InvalidOperationException>(() => context.SaveChanges());
        Assert.Contains("Parcel", refused.Message, StringComparison.Ordinal);
    }

    private static void FirstUse(string kind, DbContext context)
    {
        switch (kind)
        {
            case "owned":
                Assert.Null(((SheetContext)context).Invoices.FindShared(1));
                break;
            case "complex":
                Assert.Null(((ComplexContext)context).Parcels.FindShared(1));
                break;
            case "constructor":
                Assert.Null(((ConstructorContext)context).Badges.FindShared(1));
                break;
            case "proxy":
                Assert.Null(((ProxyContext)context).Folders.FindShared(1));
                break;
            case "converter":
                Assert.Null(((ConverterWithoutComparerContext)context).Tagged.FindShared(1));
                break;
            case "filter":
                Assert.Empty(((FilterContext)context).Sheets.ToList());
                break;
            default:
                Assert.Empty(((HierarchyContext)context).Sheets.ToList());
                break;
        }
    }

    private DbContext NewContext(string kind, Coherence coherence, string file)
    {
        DbContextOptionsBuilder<T> Options<T>()
            where T : DbContext =>
            (DbContextOptionsBuilder<T>)new DbContextOptionsBuilder<T>()
                .UseSqlite($"Data Source={_folder.File(kind + "-" + file)}")
                .UseSharedEntities(coherence, SqliteDialect.Instance);

        return kind switch
        {
            "owned" => new SheetContext(Options<SheetContext>().Options),
            "complex" => new ComplexContext(Options<ComplexContext>().Options),
            "constructor" => new ConstructorContext(Options<ConstructorContext>().Options),
            "proxy" => new ProxyContext(Options<ProxyContext>().UseLazyLoadingProxies().Options),
            "converter" => new ConverterWithoutComparerContext(Options<ConverterWithoutComparerContext>().Options),
            "filter" => new FilterContext(Options<FilterContext>().Options),
            _ => new HierarchyContext(Options<HierarchyContext>().Options),
        };
    }
}
