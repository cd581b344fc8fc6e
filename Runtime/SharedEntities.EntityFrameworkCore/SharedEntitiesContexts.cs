using System.Data.Common;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.Extensions.DependencyInjection;
using SharedEntities.AdoNet;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// What <c>UseSharedEntities</c> sets up for the contexts built with one set of options: the runtime, the dialect,
/// and each context's <see cref="ContextWritePath"/> and <see cref="ContextReads"/>. Shared by the interceptors.
/// </summary>
/// <param name="coherence">The runtime.</param>
/// <param name="dialect">The dialect given to <c>UseSharedEntities</c>, or <see langword="null"/> to find one.</param>
/// <param name="registered">The dialects registered in the service provider given to <c>UseSharedEntities</c>.</param>
internal sealed class SharedEntitiesContexts(Coherence coherence, DbDialect? dialect, IReadOnlyList<DbDialect> registered)
{
    private readonly ConditionalWeakTable<DbContext, ContextWritePath> _paths = [];
    private readonly ConditionalWeakTable<IModel, object> _cacheable = [];
    private Tuple<Type, DbDialect>? _found; // a reference: read and replaced whole by concurrent contexts

    public Coherence Coherence => coherence;

    /// <summary>The contexts' registration on <paramref name="context"/>, or <see langword="null"/> without <c>UseSharedEntities</c>.</summary>
    public static SharedEntitiesContexts? Of(DbContext context) =>
        context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.Interceptors?
            .OfType<SharedEntitiesSaveChangesInterceptor>().FirstOrDefault()?.Contexts;

    public ContextWritePath WritePathOf(DbContext context) =>
        _paths.GetValue(context, c => new ContextWritePath(c, coherence, new DbContextEntityLoader(c, coherence, DialectOf(c))));

    public DbContextEntityLoader LoaderOf(DbContext context) => WritePathOf(context).Loader;

    /// <summary>
    /// The reads of a context on its first use (<see cref="ContextReads.Of"/>). Refuses, before anything is read, a
    /// model with an entity type that the entity cache keeps (<see cref="Caching.EntityCache.Caches"/>) but cannot
    /// materialize faithfully: an error on the first use, not on the first reload served from the cache.
    /// </summary>
    /// <exception cref="InvalidOperationException">An entity type the cache keeps cannot be served from it; the message says why and how to exclude it.</exception>
    public ContextReads CreateReads(DbContext context)
    {
        IModel model = context.Model;
        if (!_cacheable.TryGetValue(model, out _))
        {
            string[] refusals = [.. model.GetEntityTypes()
                .Where(t => SharedEntityConvention.SharedTypeOf(t.ClrType) is { } shared && coherence.Cache.Caches(shared))
                .Select(t => CachedRowMapping.For(t).Refusal)
                .OfType<string>()];
            if (refusals.Length > 0)
            {
                throw new InvalidOperationException(string.Join(Environment.NewLine + Environment.NewLine, refusals));
            }

            _cacheable.AddOrUpdate(model, model);
        }

        return new ContextReads(context, coherence, LoaderOf(context));
    }

    /// <summary>Why a provider without a <see cref="DbConnection"/> (EF Core's in-memory database, Cosmos DB) is refused, and what to use instead.</summary>
    public static string NotRelational(string provider) =>
        $"SharedEntities needs a relational EF Core provider, not '{provider}': it reads versions, guards writes and publishes after the " +
        "commit through the context's DbConnection and its transactions, which this provider does not have. A context on it cannot load or " +
        "save [SharedEntity] types with UseSharedEntities (without UseSharedEntities, the classes are plain entities and no runtime checks " +
        "them). For tests, use SQLite in memory (Microsoft.EntityFrameworkCore.Sqlite and the SharedEntities.Sqlite package) under a name " +
        "that every connection of the test reaches, \"Data Source=file:<test name>?mode=memory&cache=shared\" (keep one connection open for the " +
        "test's length: the database lives as long as a connection to it), with the in-memory store (UseInMemory) or the embedded store on " +
        "the same connection string; a plain \"Data Source=:memory:\" is a new, empty database for each connection, and the runtime's checks " +
        "use a connection of their own.";

    /// <summary>Binds a store that lives in the context's database to <paramref name="transaction"/>, if the dialect has one.</summary>
    public IDisposable? EnlistStore(DbContext context, DbTransaction transaction) =>
        (DialectOf(context) as IStoreEnlistingDialect)?.EnlistStore(transaction.Connection!, transaction);

    /// <summary>
    /// The given dialect; else the first that supports the context's connection among those registered in the service
    /// provider given to <c>UseSharedEntities</c>, those registered in the context's application service provider, and
    /// the built-in <see cref="DbDialect.PostgreSql"/>. Found once per connection type: the contexts of one set of
    /// options share their application service provider.
    /// </summary>
    public DbDialect DialectOf(DbContext context)
    {
        if (dialect is not null)
        {
            return dialect;
        }

        if (_found is { } found && context.Database.IsRelational() && found.Item1 == context.Database.GetDbConnection().GetType())
        {
            return found.Item2;
        }

        if (!context.Database.IsRelational())
        {
            throw new NotSupportedException(NotRelational(context.Database.ProviderName ?? "?"));
        }

        DbConnection connection = context.Database.GetDbConnection();
        IEnumerable<DbDialect> fromApplication =
            context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.ApplicationServiceProvider?.GetServices<DbDialect>() ?? [];
        DbDialect supporting = registered.Concat(fromApplication).Append(DbDialect.PostgreSql).FirstOrDefault(d => d.Supports(connection))
            ?? throw new NotSupportedException(
                $"SharedEntities has no dialect for the provider '{context.Database.ProviderName}' (connection {connection.GetType().FullName}). " +
                "PostgreSQL (Npgsql) is built in. SQLite's comes with the SharedEntities.Sqlite package: call UseSqlite(…) or AddSqliteDialect() on " +
                "the builder that AddSharedEntities returns and UseSharedEntities(serviceProvider), or pass SqliteDialect.Instance to UseSharedEntities. " +
                "For another database, pass a DbDialect of your own to UseSharedEntities, or register it with AddDialect.");
        _found = Tuple.Create(connection.GetType(), supporting);
        return supporting;
    }
}
