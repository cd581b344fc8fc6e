using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>Providers that SharedEntities cannot serve are refused when the context is built, with a message that says what to do.</summary>
public sealed class ProviderTests
{
    [Fact]
    public void A_non_relational_provider_is_refused_when_the_context_is_built_saying_what_to_use_for_tests()
    {
        using Coherence coherence = StoryTests.NewCoherence(new InMemorySharedStore());
        DbContextOptions<SheetContext> options = new DbContextOptionsBuilder<SheetContext>()
            .UseInMemoryDatabase("provider-tests-" + Guid.NewGuid().ToString("N"))
            .UseSharedEntities(coherence)
            .Options;

        var refused = Assert.Throws<NotSupportedException>(() => new SheetContext(options)); // before any query or save
        Assert.Contains("needs a relational EF Core provider, not 'Microsoft.EntityFrameworkCore.InMemory'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("cannot load or save [SharedEntity] types", refused.Message, StringComparison.Ordinal);
        Assert.Contains("\"Data Source=file:<test name>?mode=memory&cache=shared\"", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_advice_works_SQLite_in_memory_under_a_shared_name_with_the_in_memory_or_the_embedded_store(bool embedded)
    {
        string connectionString = $"Data Source=file:provider-{Guid.NewGuid():N}?mode=memory&cache=shared";
        using var keepAlive = new SqliteConnection(connectionString);
        keepAlive.Open();
        ISharedStore store = embedded ? new SqliteSharedStore(connectionString, useWal: false) : new InMemorySharedStore();
        using Coherence a = StoryTests.NewCoherence(store), b = StoryTests.NewCoherence(store);
        SheetContext New(Coherence coherence) =>
            new(new DbContextOptionsBuilder<SheetContext>().UseSqlite(connectionString).UseSharedEntities(coherence, SqliteDialect.Instance).Options);

        using SheetContext inA = New(a), inB = New(b);
        inA.Database.EnsureCreated();
        await using (a.BeginScope())
        {
            inA.Sheets.Add(new Sheet { Id = 1, Version = 1, Title = "Q1" });
            await inA.SaveChangesSharedAsync();
        }

        Sheet kept;
        await using (b.BeginScope())
        {
            kept = await inB.Sheets.SingleAsync(s => s.Id == 1);
            Assert.Equal("Q1", kept.Title);
        }

        await using (a.BeginScope())
        {
            (await inA.Sheets.SingleAsync(s => s.Id == 1)).Title = "Q2";
            await inA.SaveChangesSharedAsync();
        }

        await using (b.BeginScope())
        {
            Assert.Equal("Q2", kept.Title); // checked and reloaded on the runtime's own connection: the same database
        }
    }
}
