using Microsoft.Data.Sqlite;
using SharedEntities.Sqlite;

namespace SharedEntities.Database.Tests;

/// <summary>Where the dialects can make a connection of their own for the runtime's checks.</summary>
public sealed class DialectTests
{
    [Theory]
    [InlineData("Data Source=:memory:")]
    [InlineData("Data Source=")]
    [InlineData("Data Source=app;Mode=Memory")]
    public void A_private_in_memory_sqlite_database_gets_no_check_connection(string connectionString)
    {
        using var connection = new SqliteConnection(connectionString);
        Assert.Null(SqliteDialect.Instance.CreateCheckConnection(connection, connectionString));
    }

    [Theory]
    [InlineData("Data Source=app.db;Default Timeout=7")]
    [InlineData("Data Source=shared;Mode=Memory;Cache=Shared")]
    public void A_sqlite_database_other_connections_can_open_gets_one_with_the_same_settings(string connectionString)
    {
        using var connection = new SqliteConnection(connectionString);
        using var check = (SqliteConnection)SqliteDialect.Instance.CreateCheckConnection(connection, connectionString)!;
        Assert.NotSame(connection, check);
        Assert.Equal(new SqliteConnectionStringBuilder(connectionString).ToString(), check.ConnectionString);
    }

    [Fact]
    public void A_postgresql_connection_is_cloned_with_its_password()
    {
        using var connection = new Npgsql.NpgsqlConnection("Host=127.0.0.1;Username=app;Password=secret;Database=app");
        using var check = (Npgsql.NpgsqlConnection)AdoNet.DbDialect.PostgreSql.CreateCheckConnection(connection, connectionString: null)!;
        Assert.NotSame(connection, check);
        Assert.Contains("Password=secret", check.ConnectionString, StringComparison.Ordinal);
    }
}
