using Microsoft.Extensions.DependencyInjection;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.Database.Tests;

/// <summary><c>UseSqlite</c> and <c>AddSqliteDialect</c>, the SQLite package's methods on the builder that <c>AddSharedEntities</c> returns.</summary>
public sealed class SqliteDependencyInjectionTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void The_last_store_choice_wins_and_the_sqlite_dialect_is_registered()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities().UseInMemory().UseSqlite($"Data Source={_folder.File("di.db")}");
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.IsType<SqliteSharedStore>(provider.GetRequiredService<Coherence>().Store);
        Assert.Single(services, d => d.ServiceType == typeof(ISharedStore));
        Assert.Same(SqliteDialect.Instance, Assert.Single(provider.GetServices<DbDialect>()));
    }

    [Fact]
    public void AddSqliteDialect_registers_the_dialect_once_whatever_the_store()
    {
        var services = new ServiceCollection();
        services.AddSharedEntities().UseInMemory().AddSqliteDialect().AddSqliteDialect();
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.IsType<InMemorySharedStore>(provider.GetRequiredService<Coherence>().Store);
        Assert.Same(SqliteDialect.Instance, Assert.Single(provider.GetServices<DbDialect>()));
    }

    [Fact]
    public void Arguments_are_checked()
    {
        var builder = new ServiceCollection().AddSharedEntities();
        Assert.Throws<ArgumentException>(() => builder.UseSqlite(" "));
        Assert.Throws<ArgumentNullException>(() => SqliteSharedEntitiesBuilderExtensions.AddSqliteDialect(null!));
    }
}
