using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharedEntities;
using SharedEntities.DependencyInjection;
using SharedEntities.Stores;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers SharedEntities in a service collection.</summary>
public static class SharedEntitiesServiceCollectionExtensions
{
    /// <summary>
    /// Registers the process's <see cref="Coherence"/> as a singleton, configured by <paramref name="configure"/> and
    /// validated when the host starts (or, without a host, when the runtime is first resolved). Choose the store on the
    /// returned builder: <c>UseMemcached</c> (package <c>SharedEntities.Memcached</c>), <c>UseSqlite</c> (package
    /// <c>SharedEntities.Sqlite</c>), <see cref="SharedEntitiesBuilder.UseInMemory"/> or <see cref="SharedEntitiesBuilder.UseStore"/>.
    /// </summary>
    /// <remarks>
    /// Logging goes to the registered <see cref="ILoggerFactory"/> (categories <c>SharedEntities.Coherence</c> and
    /// <c>SharedEntities.Memcached.MemcachedStore</c>); counters go to the meter <c>SharedEntities</c>, created by the
    /// registered <see cref="IMeterFactory"/> when there is one (<c>services.AddMetrics()</c>).
    /// </remarks>
    public static SharedEntitiesBuilder AddSharedEntities(this IServiceCollection services, Action<CoherenceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<CoherenceOptions> options = services.AddOptions<CoherenceOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CoherenceOptions>>(
            new OptionsValidator<CoherenceOptions>(static o => o.Validate())));
        services.TryAddSingleton(static provider => new SharedEntitiesMetrics(provider.GetService<IMeterFactory>()));
        services.TryAddSingleton(static provider => new Coherence(
            provider.GetService<ISharedStore>() ?? throw new InvalidOperationException(
                "SharedEntities has no store: call UseMemcached (package SharedEntities.Memcached), UseSqlite (package SharedEntities.Sqlite), " +
                "UseInMemory or UseStore on the builder that AddSharedEntities returns."),
            provider.GetRequiredService<IOptions<CoherenceOptions>>().Value,
            provider.GetService<ILoggerFactory>(),
            provider.GetRequiredService<SharedEntitiesMetrics>()));
        return new SharedEntitiesBuilder(services);
    }
}
