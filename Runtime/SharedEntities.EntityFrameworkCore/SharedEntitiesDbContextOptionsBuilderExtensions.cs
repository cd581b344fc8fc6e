using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using SharedEntities.AdoNet;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>Sets up SharedEntities on a <see cref="DbContext"/>. See docs/efcore.md.</summary>
public static class SharedEntitiesDbContextOptionsBuilderExtensions
{
    /// <summary>
    /// Makes the context's <c>[SharedEntity]</c> classes shared: every entity the context materializes is attached to
    /// <paramref name="coherence"/> (with the context as its loader; read outside a transaction in a scope, it counts as
    /// checked there) and, read outside every transaction, offered to the runtime's entity cache for reads by key
    /// (<see cref="SharedEntitiesDbSetExtensions.FindSharedAsync{T, TKey}"/>); shared properties are mapped to their
    /// generated fields and the version property is a concurrency token; <c>SaveChanges</c> increments the versions it
    /// writes, runs its guarded statements in a transaction (the application's, or one of EF Core's own), raises the
    /// dirty tokens after them and before the commit, and publishes after it. A model with an entity type that the
    /// cache keeps but cannot serve faithfully is refused on the context's first use (docs/efcore.md).
    /// </summary>
    /// <param name="optionsBuilder">The context's options.</param>
    /// <param name="coherence">The process's runtime.</param>
    /// <param name="dialect">
    /// How to lock and read versions. By default the first dialect that <see cref="DbDialect.Supports"/> the context's
    /// connection among those registered in the context's application service provider (<c>AddDbContext</c>; e.g.
    /// <c>UseSqlite</c> or <c>AddSqliteDialect</c> of the <c>SharedEntities.Sqlite</c> package) and the built-in
    /// <see cref="DbDialect.PostgreSql"/>.
    /// </param>
    public static DbContextOptionsBuilder UseSharedEntities(this DbContextOptionsBuilder optionsBuilder, Coherence coherence, DbDialect? dialect = null) =>
        UseSharedEntities(optionsBuilder, coherence, dialect, registered: []);

    /// <inheritdoc cref="UseSharedEntities(DbContextOptionsBuilder, Coherence, DbDialect?)"/>
    public static DbContextOptionsBuilder<TContext> UseSharedEntities<TContext>(this DbContextOptionsBuilder<TContext> optionsBuilder, Coherence coherence, DbDialect? dialect = null)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)UseSharedEntities((DbContextOptionsBuilder)optionsBuilder, coherence, dialect);

    /// <summary>
    /// The DI form, for <c>services.AddDbContext&lt;T&gt;((sp, options) =&gt; options.UseSqlite(…).UseSharedEntities(sp))</c>:
    /// the <see cref="Coherence"/> registered as a singleton, and by default the first of the <see cref="DbDialect"/>
    /// services registered there (<c>AddDialect</c>, <c>UseSqlite</c>, <c>AddSqliteDialect</c>) that supports the
    /// context's connection, else the built-in <see cref="DbDialect.PostgreSql"/>.
    /// </summary>
    public static DbContextOptionsBuilder UseSharedEntities(this DbContextOptionsBuilder optionsBuilder, IServiceProvider services, DbDialect? dialect = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return UseSharedEntities(optionsBuilder, services.GetRequiredService<Coherence>(), dialect, [.. services.GetServices<DbDialect>()]);
    }

    private static DbContextOptionsBuilder UseSharedEntities(DbContextOptionsBuilder optionsBuilder, Coherence coherence, DbDialect? dialect, IReadOnlyList<DbDialect> registered)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);
        ArgumentNullException.ThrowIfNull(coherence);
        TransactionDisposedObserver.EnsureSubscribed();
        ((IDbContextOptionsBuilderInfrastructure)optionsBuilder).AddOrUpdateExtension(
            optionsBuilder.Options.FindExtension<SharedEntitiesOptionsExtension>() ?? new SharedEntitiesOptionsExtension());
        var contexts = new SharedEntitiesContexts(coherence, dialect, registered);
        return optionsBuilder.AddInterceptors(
            SharedEntitiesConnectionInterceptor.Instance,
            new SharedEntitiesSaveChangesInterceptor(contexts),
            new SharedEntitiesTransactionInterceptor(contexts),
            new SharedEntitiesCommandInterceptor(contexts));
    }
}

/// <summary>SaveChanges that reports a conflict on a shared entity as <see cref="StaleEntityException"/>.</summary>
public static class SharedEntitiesDbContextExtensions
{
    /// <summary>
    /// <see cref="DbContext.SaveChanges()"/>, with a <see cref="DbUpdateConcurrencyException"/> on a shared entity
    /// turned into <see cref="StaleEntityException"/> naming it: another process committed that row first, and
    /// nothing was written. When the save is refused (that, or <see cref="SharedStoreUnavailableException"/>), the
    /// shared entities it tried to write go back to the values they were read with, so that no later save of the
    /// context writes them behind the caller's back; retry the work in a new scope. (Plain <c>SaveChanges</c> is
    /// guarded the same way, reports EF Core's exception and leaves the change tracker as EF Core does.)
    /// </summary>
    /// <exception cref="StaleEntityException">Another process committed one of the shared entities first, or the store is ahead of the database.</exception>
    /// <exception cref="SharedStoreUnavailableException">The store could not take a dirty token: nothing was committed.</exception>
    public static int SaveChangesShared(this DbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return context.SaveChanges();
        }
        catch (Exception ex) when (ex is DbUpdateConcurrencyException or SharedEntityException)
        {
            if (Refused(context, ex) is { } stale)
            {
                throw stale;
            }

            throw;
        }
    }

    /// <inheritdoc cref="SaveChangesShared"/>
    public static async Task<int> SaveChangesSharedAsync(this DbContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await context.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DbUpdateConcurrencyException or SharedEntityException)
        {
            if (Refused(context, ex) is { } stale)
            {
                throw stale;
            }

            throw;
        }
    }

    /// <summary>
    /// The loader that entities materialized by <paramref name="context"/> are attached with, or
    /// <see langword="null"/> when the context was not set up with <c>UseSharedEntities</c>.
    /// </summary>
    public static DbContextEntityLoader? GetSharedEntityLoader(this DbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return SharedEntitiesContexts.Of(context)?.LoaderOf(context);
    }

    // A refused save: discards the refused changes of its shared entities; returns the exception that names the
    // conflict, or null to rethrow the one caught.
    private static StaleEntityException? Refused(DbContext context, Exception exception)
    {
        StaleEntityException? stale = exception is DbUpdateConcurrencyException concurrency ? Stale(concurrency) : null; // before the discard: it reads the entries' states
        SharedEntitiesContexts.Of(context)?.WritePathOf(context).DiscardRefused();
        return stale;
    }

    private static StaleEntityException? Stale(DbUpdateConcurrencyException exception)
    {
        foreach (var entry in exception.Entries)
        {
            if (entry.Entity is ISharedEntity entity)
            {
                return new StaleEntityException(
                    entity.SharedType.Name,
                    entity.SharedKey,
                    entity is IVersionedSharedEntity versioned ? versioned.SharedVersion : null,
                    $"the database refused the version-guarded {(entry.State == EntityState.Deleted ? "delete" : "update")} of SaveChanges.",
                    exception);
            }
        }

        return null;
    }
}
