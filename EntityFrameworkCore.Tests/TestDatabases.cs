using System.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>The database chores the story suites share: snapshot transactions, and a PostgreSQL database per test.</summary>
internal static class TestDatabases
{
    /// <summary>
    /// Begins, in <paramref name="context"/>, a deferred SQLite transaction whose WAL snapshot <paramref name="read"/>
    /// takes (SQLite's REPEATABLE READ); disposing rolls it back.
    /// </summary>
    public static IDisposable BeginSqliteSnapshot(DbContext context, Func<bool> read)
    {
        context.Database.OpenConnection();
        SqliteTransaction transaction = ((SqliteConnection)context.Database.GetDbConnection()).BeginTransaction(deferred: true);
        context.Database.UseTransaction(transaction);
        Assert.True(read());
        return new SqliteSnapshot(context, transaction);
    }

    /// <summary>Begins, in <paramref name="context"/>, a REPEATABLE READ transaction whose snapshot <paramref name="read"/> takes.</summary>
    public static IDisposable BeginPostgresSnapshot(DbContext context, Func<bool> read)
    {
        Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction transaction = context.Database.BeginTransaction(IsolationLevel.RepeatableRead);
        Assert.True(read());
        return transaction;
    }

    /// <summary>The connection string of a new database of <paramref name="cluster"/> (EnsureCreated creates it).</summary>
    public static string NewPostgresDatabase(PostgresCluster cluster) =>
        cluster.ConnectionString.Replace("Database=postgres", "Database=se_" + Guid.NewGuid().ToString("N")[..12], StringComparison.Ordinal);

    /// <summary>
    /// Each test has a database, so a pool, of its own: close its idle connections (the contexts' and their checks'),
    /// or the cluster's connection limit is reached after a few dozen tests.
    /// </summary>
    public static void ClosePostgresPool(string connectionString)
    {
        using var connection = new Npgsql.NpgsqlConnection(connectionString);
        Npgsql.NpgsqlConnection.ClearPool(connection);
    }

    private sealed class SqliteSnapshot(DbContext context, SqliteTransaction transaction) : IDisposable
    {
        public void Dispose()
        {
            transaction.Rollback();
            context.Database.UseTransaction(null);
            transaction.Dispose();
        }
    }
}

/// <summary>What a test owns, disposed last-created first.</summary>
internal sealed class Disposables : IDisposable
{
    private readonly List<IDisposable> _items = [];

    public T Add<T>(T item)
        where T : IDisposable
    {
        lock (_items)
        {
            _items.Add(item);
        }

        return item;
    }

    public void Dispose()
    {
        for (int i = _items.Count - 1; i >= 0; i--)
        {
            _items[i].Dispose();
        }
    }
}
