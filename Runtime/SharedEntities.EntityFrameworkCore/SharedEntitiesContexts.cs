using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// What <c>UseSharedEntities</c> sets up for the contexts built with one set of options: the runtime, the dialect,
/// and each context's <see cref="ContextWritePath"/>. Shared by the SaveChanges and transaction interceptors.
/// </summary>
internal sealed class SharedEntitiesContexts(Coherence coherence, DbDialect? dialect)
{
    private readonly ConditionalWeakTable<DbContext, ContextWritePath> _paths = [];

    public Coherence Coherence => coherence;

    /// <summary>The contexts' registration on <paramref name="context"/>, or <see langword="null"/> without <c>UseSharedEntities</c>.</summary>
    public static SharedEntitiesContexts? Of(DbContext context) =>
        context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.Interceptors?
            .OfType<SharedEntitiesSaveChangesInterceptor>().FirstOrDefault()?.Contexts;

    public ContextWritePath WritePathOf(DbContext context) =>
        _paths.GetValue(context, c => new ContextWritePath(c, coherence, new DbContextEntityLoader(c, coherence, DialectOf(c))));

    public DbContextEntityLoader LoaderOf(DbContext context) => WritePathOf(context).Loader;

    /// <summary>Attaches a materialized entity.</summary>
    public void Attach(DbContext context, ISharedEntity entity) => coherence.Attach(entity, LoaderOf(context));

    public DbDialect DialectOf(DbContext context) =>
        dialect ?? context.Database.ProviderName switch
        {
            "Microsoft.EntityFrameworkCore.Sqlite" => SqliteDialect.Instance,
            "Npgsql.EntityFrameworkCore.PostgreSQL" => DbDialect.PostgreSql,
            var other => throw new NotSupportedException(
                $"SharedEntities knows the SQLite and PostgreSQL providers, not '{other}': pass a DbDialect to UseSharedEntities."),
        };
}
