using Microsoft.EntityFrameworkCore;
using SharedEntities.Stores;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>Providers that SharedEntities cannot serve are refused with a message that says what to do.</summary>
public sealed class ProviderTests
{
    [Fact]
    public void A_non_relational_provider_is_refused_saying_what_is_and_is_not_supported()
    {
        using Coherence coherence = StoryTests.NewCoherence(new InMemorySharedStore());
        using var context = new SheetContext(new DbContextOptionsBuilder<SheetContext>()
            .UseInMemoryDatabase("provider-tests-" + Guid.NewGuid().ToString("N"))
            .UseSharedEntities(coherence)
            .Options);
        context.Sheets.Add(new Sheet { Id = 1, Title = "Q1", Version = 1 });

        var refused = Assert.Throws<NotSupportedException>(() => context.SaveChanges());
        Assert.Contains("needs a relational EF Core provider, not 'Microsoft.EntityFrameworkCore.InMemory'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("cannot load or save [SharedEntity] types", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Data Source=:memory:", refused.Message, StringComparison.Ordinal);
    }
}
