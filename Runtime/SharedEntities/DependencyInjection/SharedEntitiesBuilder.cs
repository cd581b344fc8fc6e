using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharedEntities.Memcached;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.DependencyInjection;

/// <summary>Chooses the store of the <see cref="Coherence"/> that <c>AddSharedEntities</c> registered. The last choice wins.</summary>
public sealed class SharedEntitiesBuilder
{
    internal SharedEntitiesBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>The production store: memcached servers, e.g. <c>"10.0.0.1:11211,10.0.0.2:11211"</c> (<c>host:port weight</c> entries allowed).</summary>
    public SharedEntitiesBuilder UseMemcached(string servers)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(servers);
        return UseMemcached(options => options.Servers = servers);
    }

    /// <summary>The production store, with every client setting (validated at start like the runtime's options).</summary>
    public SharedEntitiesBuilder UseMemcached(Action<MemcachedClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        Services.AddOptions<MemcachedClientOptions>().Configure(configure).ValidateOnStart();
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MemcachedClientOptions>>(
            new OptionsValidator<MemcachedClientOptions>(static o => o.Validate())));
        return UseStore(static provider => new MemcachedStore(
            provider.GetRequiredService<IOptions<MemcachedClientOptions>>().Value,
            provider.GetService<ILogger<MemcachedStore>>(),
            provider.GetService<IMeterFactory>()));
    }

    /// <summary>
    /// The embedded store: a token table in the application's own SQLite file, so that processes on one machine share
    /// entities with no server. Give the same file as the data's connection string.
    /// </summary>
    public SharedEntitiesBuilder UseSqlite(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return UseStore(_ => new SqliteSharedStore(connectionString));
    }

    /// <summary>A store inside this process only: for tests and single-process demos.</summary>
    public SharedEntitiesBuilder UseInMemory() => UseStore(static _ => new InMemorySharedStore());

    /// <summary>Any store, built from the service provider (disposed with it when it is <see cref="IDisposable"/>).</summary>
    public SharedEntitiesBuilder UseStore(Func<IServiceProvider, ISharedStore> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.Replace(ServiceDescriptor.Singleton(factory));
        return this;
    }
}
