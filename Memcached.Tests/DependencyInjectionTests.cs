using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace SharedEntities.Memcached.Tests;

/// <summary><c>UseMemcached</c>, the memcached package's method on the builder that <c>AddSharedEntities</c> returns.</summary>
public sealed class DependencyInjectionTests
{
    [Fact]
    public void Memcached_settings_are_validated_at_start()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities().UseMemcached("cache-1:11211,cache-1:11211");
        using ServiceProvider provider = services.BuildServiceProvider();

        var refused = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("listed twice", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseMemcached_builds_the_memcached_store_with_every_setting()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities().UseMemcached(o =>
        {
            o.Servers = "127.0.0.1:1";
            o.OperationTimeout = TimeSpan.FromMilliseconds(250);
        });
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.IsType<MemcachedStore>(provider.GetRequiredService<Coherence>().Store);
        Assert.Equal(TimeSpan.FromMilliseconds(250), provider.GetRequiredService<IOptions<MemcachedClientOptions>>().Value.OperationTimeout);
    }

    [Fact]
    public void Arguments_are_checked()
    {
        var builder = new ServiceCollection().AddSharedEntities();
        Assert.Throws<ArgumentException>(() => builder.UseMemcached(""));
        Assert.Throws<ArgumentNullException>(() => builder.UseMemcached((Action<MemcachedClientOptions>)null!));
        Assert.Throws<ArgumentNullException>(() => MemcachedSharedEntitiesBuilderExtensions.UseMemcached(null!, "127.0.0.1:11211"));
    }
}
