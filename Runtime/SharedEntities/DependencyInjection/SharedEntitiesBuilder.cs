using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using SharedEntities.AdoNet;
using SharedEntities.Stores;

namespace SharedEntities.DependencyInjection;

/// <summary>
/// Chooses the store of the <see cref="Coherence"/> that <c>AddSharedEntities</c> registered (the last choice wins),
/// and registers database dialects. The stores of their own packages add their methods here as extension methods:
/// <c>UseMemcached</c> (<c>SharedEntities.Memcached</c>), <c>UseSqlite</c> (<c>SharedEntities.Sqlite</c>).
/// </summary>
public sealed class SharedEntitiesBuilder
{
    internal SharedEntitiesBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection.</summary>
    public IServiceCollection Services { get; }

    /// <summary>A store inside this process only: for tests and single-process demos.</summary>
    public SharedEntitiesBuilder UseInMemory() => UseStore(static _ => new InMemorySharedStore());

    /// <summary>Any store, built from the service provider (disposed with it when it is <see cref="IDisposable"/>).</summary>
    public SharedEntitiesBuilder UseStore(Func<IServiceProvider, ISharedStore> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.Replace(ServiceDescriptor.Singleton(factory));
        return this;
    }

    /// <summary>
    /// Registers <paramref name="dialect"/> as a <see cref="DbDialect"/> service (once per dialect type), among which
    /// the EF Core integration's <c>UseSharedEntities(serviceProvider)</c> finds the one that
    /// <see cref="DbDialect.Supports"/> a context's connection. <see cref="DbDialect.PostgreSql"/> needs no registration.
    /// </summary>
    public SharedEntitiesBuilder AddDialect(DbDialect dialect)
    {
        ArgumentNullException.ThrowIfNull(dialect);
        Services.TryAddEnumerable(ServiceDescriptor.Singleton<DbDialect>(dialect));
        return this;
    }
}
