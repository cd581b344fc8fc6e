using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SharedEntities.AdoNet;
using SharedEntities.Stores;

namespace SharedEntities.Tests;

public sealed class DependencyInjectionTests
{
    [Fact]
    public void AddSharedEntities_registers_one_configured_runtime()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities(o => o.TokenTtl = TimeSpan.FromMinutes(5)).UseInMemory();
        using ServiceProvider provider = services.BuildServiceProvider();

        var coherence = provider.GetRequiredService<Coherence>();
        Assert.Same(coherence, provider.GetRequiredService<Coherence>());
        Assert.Equal(TimeSpan.FromMinutes(5), coherence.Options.TokenTtl);
        Assert.IsType<InMemorySharedStore>(coherence.Store);
        Assert.Same(coherence.Store, provider.GetRequiredService<ISharedStore>());
    }

    [Fact]
    public void Invalid_options_are_refused_at_start_naming_the_setting()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities(o => o.DirtyTokenTtl = TimeSpan.Zero).UseInMemory();
        using ServiceProvider provider = services.BuildServiceProvider();

        // What a host runs at start (ValidateOnStart), and what resolving the runtime runs without a host.
        var atStart = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("DirtyTokenTtl", atStart.Message, StringComparison.Ordinal);
        var atResolve = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<Coherence>());
        Assert.Contains("DirtyTokenTtl", atResolve.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_runtime_without_a_store_is_refused_with_the_ways_to_choose_one()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities();
        using ServiceProvider provider = services.BuildServiceProvider();

        var refused = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<Coherence>());
        Assert.Contains("UseMemcached", refused.Message, StringComparison.Ordinal);
        Assert.Contains("UseSqlite", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_last_store_choice_wins()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities().UseStore(_ => throw new InvalidOperationException("replaced")).UseInMemory();
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.IsType<InMemorySharedStore>(provider.GetRequiredService<Coherence>().Store);
        Assert.Single(services, d => d.ServiceType == typeof(ISharedStore));
    }

    [Fact]
    public void A_dialect_is_registered_once_per_type()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities().UseInMemory().AddDialect(DbDialect.PostgreSql).AddDialect(DbDialect.PostgreSql);
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.Same(DbDialect.PostgreSql, Assert.Single(provider.GetServices<DbDialect>()));
    }

    [Fact]
    public void Counters_are_created_by_the_registered_meter_factory()
    {
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddSharedEntities().UseInMemory();
        using ServiceProvider provider = services.BuildServiceProvider();

        var factory = provider.GetRequiredService<IMeterFactory>();
        Meter meter = provider.GetRequiredService<Coherence>().Metrics.Checks.Meter;
        Assert.Equal(SharedEntitiesMetrics.MeterName, meter.Name);
        Assert.Same(factory, meter.Scope);
    }

    [Fact]
    public async Task An_application_reads_the_counters_by_meter_and_instrument_name()
    {
        var services = new ServiceCollection();
        services.AddMetrics();
        services.AddSharedEntities().UseInMemory();
        using ServiceProvider provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IMeterFactory>();
        using var checks = new MetricCollector<long>(factory, SharedEntitiesMetrics.MeterName, "sharedentities.checks");

        var coherence = provider.GetRequiredService<Coherence>();
        var database = new InMemory.InMemoryEntityDatabase();
        database.Insert(new Sheet { Id = 1, Version = 1, Title = "Q1" });
        Sheet sheet = database.Connect(coherence).Find<Sheet>(1)!;
        await using (coherence.BeginScope())
        {
            Assert.Equal("Q1", sheet.Title);
        }

        Assert.Equal(1, checks.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [Fact]
    public void Arguments_are_checked()
    {
        var builder = new ServiceCollection().AddSharedEntities();
        Assert.Throws<ArgumentNullException>(() => builder.UseStore(null!));
        Assert.Throws<ArgumentNullException>(() => builder.AddDialect(null!));
    }
}
