using SharedEntities.DependencyInjection;
using SharedEntities.Sqlite;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>SQLite on the builder that <c>AddSharedEntities</c> returns: the embedded store and the SQLite dialect.</summary>
public static class SqliteSharedEntitiesBuilderExtensions
{
    /// <summary>
    /// The embedded store: a token table in the application's own SQLite file, so that processes on one machine share
    /// entities with no server. Give the same file as the data's connection string. Registers
    /// <see cref="SqliteDialect"/> too (see <see cref="AddSqliteDialect"/>).
    /// </summary>
    public static SharedEntitiesBuilder UseSqlite(this SharedEntitiesBuilder builder, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.AddSqliteDialect().UseStore(_ => new SqliteSharedStore(connectionString));
    }

    /// <summary>
    /// Registers <see cref="SqliteDialect"/>, so that the EF Core integration's <c>UseSharedEntities(serviceProvider)</c>
    /// serves contexts on Microsoft.Data.Sqlite connections whatever the store (e.g. SQLite data with memcached).
    /// </summary>
    public static SharedEntitiesBuilder AddSqliteDialect(this SharedEntitiesBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddDialect(SqliteDialect.Instance);
    }
}
