using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Database.Tests;

/// <summary>
/// The seed and Django stories through <see cref="DbEntityLoader"/>, with two "processes" (each its own runtime and
/// connection) sharing one database and one embedded store. Run on SQLite and on PostgreSQL.
/// </summary>
public abstract class LoaderStoryTests : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    protected LoaderStoryTests()
    {
    }

    protected string SheetTable { get; } = "sheet_" + Guid.NewGuid().ToString("N")[..8];

    protected abstract DbDialect Dialect { get; }

    protected abstract ISharedStore Store { get; }

    public void Dispose()
    {
        foreach (IDisposable disposable in _owned)
        {
            disposable.Dispose();
        }

        DisposeDatabase();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Seed_story_a_rename_is_seen_by_the_next_scope_and_a_delete_is_noticed()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        Sheet inB;
        await using (b.Coherence.BeginScope())
        {
            inB = b.Loader.Find<Sheet>(1)!;
            Assert.Equal("Q1", inB.Title);
        }

        await a.Coherence.RunInScopeAsync(async (_, ct) => (await a.Loader.FindAsync<Sheet>(1, ct))!.Title = "Q2");
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
            Assert.Equal(2, inB.Version);
        }

        await a.Coherence.RunInScopeAsync(async (scope, ct) => scope.Delete((await a.Loader.FindAsync<Sheet>(1, ct))!));
        await using (b.Coherence.BeginScope())
        {
            Assert.Throws<EntityDeletedException>(() => inB.Title);
        }

        Assert.Null(await a.Loader.FindAsync<Sheet>(1));
    }

    [Fact]
    public async Task Django_story_a_long_recalculation_is_refused_instead_of_overwriting()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");

        FreshScope recalculation = b.Coherence.BeginScope();
        Sheet inB = b.Loader.Find<Sheet>(1)!;
        Assert.Equal("Q1", inB.Title);

        await a.Coherence.RunInScopeAsync(async (_, ct) => (await a.Loader.FindAsync<Sheet>(1, ct))!.Title = "from A");

        inB.Title = "recalculated by B";
        StaleEntityException refused = await Assert.ThrowsAsync<StaleEntityException>(() => recalculation.CommitAsync());
        Assert.Equal("Sheet", refused.EntityName);
        await recalculation.DisposeAsync();

        await using (a.Coherence.BeginScope())
        {
            Sheet check = (await a.Loader.FindAsync<Sheet>(1))!;
            Assert.Equal("from A", check.Title);
            Assert.Equal(2, check.Version);
        }
    }

    [Fact]
    public async Task Django_story_inside_a_repeatable_read_transaction_gets_the_stale_snapshot_exception()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        Sheet inB = b.Loader.Find<Sheet>(1)!;

        using DbTransaction snapshot = BeginSnapshot(b);
        await a.Coherence.RunInScopeAsync(async (_, ct) => (await a.Loader.FindAsync<Sheet>(1, ct))!.Title = "from A");

        await using (b.Coherence.BeginScope())
        {
            StaleSnapshotException stale = Assert.Throws<StaleSnapshotException>(() => inB.Title);
            Assert.Equal("Sheet", stale.EntityName);
            Assert.Contains("Commit or roll back", stale.Message, StringComparison.Ordinal);
        }

        snapshot.Rollback();
        b.Loader.Transaction = null;
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("from A", inB.Title);
        }
    }

    [Fact]
    public async Task A_lease_fill_inside_an_old_snapshot_is_refused_by_the_locking_read()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        Sheet inB = b.Loader.Find<Sheet>(1)!;

        using DbTransaction snapshot = BeginSnapshot(b);
        await a.Coherence.RunInScopeAsync(async (_, ct) => (await a.Loader.FindAsync<Sheet>(1, ct))!.Title = "from A");
        Evict(a.Coherence.StoreKeyOf(inB));

        await using (b.Coherence.BeginScope())
        {
            // Miss → B wins the lease → locked version read in B's old snapshot → the database refuses it.
            Assert.Throws<StaleSnapshotException>(() => inB.Title);
        }
    }

    [Fact]
    public async Task Many_stale_entities_reload_in_one_query()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        for (int id = 1; id <= 20; id++)
        {
            await InsertSheetAsync(a, id, "v1");
        }

        IReadOnlyList<Sheet> inB;
        await using (b.Coherence.BeginScope())
        {
            inB = await b.Loader.FindManyAsync<Sheet>(Enumerable.Range(1, 20).Cast<object>());
            Assert.Equal(20, inB.Count);
        }

        await a.Coherence.RunInScopeAsync(async (_, ct) =>
        {
            foreach (Sheet sheet in await a.Loader.FindManyAsync<Sheet>(Enumerable.Range(1, 20).Cast<object>(), ct))
            {
                sheet.Title = "v2";
            }
        });

        int before = b.Loader.Statements;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            await scope.CheckAsync(inB);
            Assert.All(inB, s => Assert.Equal("v2", s.Title));
        }

        Assert.Equal(1, b.Loader.Statements - before);
    }

    [Fact]
    public async Task A_scope_cannot_commit_inside_an_application_transaction()
    {
        Proc a = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        using DbTransaction transaction = a.Loader.BeginTransaction(IsolationLevel.ReadCommitted);
        await using FreshScope scope = a.Coherence.BeginScope();
        a.Loader.Find<Sheet>(1)!.Title = "x";
        await Assert.ThrowsAsync<InvalidOperationException>(() => scope.CommitAsync());
    }

    [Fact]
    public async Task With_a_check_connection_a_check_runs_while_the_application_streams_a_reader_on_the_loaders_connection()
    {
        Proc a = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        await InsertSheetAsync(a, 2, "Q2");
        Proc b = NewProcess();
        using DbConnection checks = NewConnection();
        b.Loader.CheckConnection = checks;
        Sheet inB = b.Loader.Find<Sheet>(1)!;
        string key = b.Coherence.StoreKeyOf(inB);
        Evict(key); // cold: the check wins the lease and fills it from a locked read

        using (DbCommand command = b.Loader.Connection.CreateCommand())
        {
            command.CommandText = $"SELECT \"Id\" FROM \"{SheetTable}\" ORDER BY \"Id\"";
            using DbDataReader reader = command.ExecuteReader();
            Assert.True(reader.Read()); // the application's reader stays open on the loader's connection
            await using (b.Coherence.BeginScope())
            {
                Assert.Equal("Q1", inB.Title);
            }

            Assert.True(reader.Read());
        }

        Assert.Equal(ConnectionState.Closed, checks.State); // given back after the check
        var read = new StoreBatch();
        read.AddRead(key);
        Store.Execute(read);
        Assert.Equal(SharedEntities.Protocol.SharedToken.Clean(1).Value, read[0].Value); // filled, no placeholder left
    }

    protected abstract DbConnection OpenConnection();

    /// <summary>A new, closed connection to the test's database.</summary>
    protected abstract DbConnection NewConnection();

    protected abstract DbTransaction BeginSnapshot(Proc process);

    protected abstract void DisposeDatabase();

    protected abstract void Evict(string key);

    protected internal static void Exec(DbConnection connection, string sql)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using DbCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    protected Proc NewProcess()
    {
        var coherence = new Coherence(Store);
        DbConnection connection = OpenConnection();
        _owned.Add(coherence);
        _owned.Add(connection);
        return new Proc(coherence, new DbEntityLoader(coherence, connection, Dialect, DbEntityMapping.For<Sheet>(SheetTable)));
    }

    protected static Task<Sheet> InsertSheetAsync(Proc process, int id, string title) =>
        process.Loader.InsertAsync(new Sheet { Id = id, Version = 1, Title = title });

    protected sealed record Proc(Coherence Coherence, DbEntityLoader Loader);
}

public sealed class SqliteLoaderStoryTests : LoaderStoryTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;

    public SqliteLoaderStoryTests()
    {
        _store = new SqliteSharedStore(ConnectionString);
        using DbConnection connection = OpenConnection();
        Exec(connection, $"CREATE TABLE \"{SheetTable}\" (\"Id\" INTEGER PRIMARY KEY, \"Version\" INTEGER NOT NULL, \"Title\" TEXT NOT NULL)");
    }

    protected override DbDialect Dialect => SqliteDialect.Instance;

    protected override ISharedStore Store => _store;

    private string ConnectionString => $"Data Source={_folder.File("app.db")};Default Timeout=5";

    protected override DbConnection NewConnection() => new SqliteConnection(ConnectionString);

    protected override DbConnection OpenConnection()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        Exec(connection, "PRAGMA journal_mode = WAL");
        return connection;
    }

    protected override DbTransaction BeginSnapshot(Proc process)
    {
        // A deferred transaction takes its WAL snapshot at its first read: SQLite's REPEATABLE READ.
        var connection = (SqliteConnection)process.Loader.Connection;
        SqliteTransaction transaction = connection.BeginTransaction(deferred: true);
        process.Loader.Transaction = transaction;
        using SqliteCommand read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = $"SELECT count(*) FROM \"{SheetTable}\"";
        read.ExecuteScalar();
        return transaction;
    }

    protected override void Evict(string key) => _store.Evict(key);

    protected override void DisposeDatabase() => _folder.Dispose();

    [Fact]
    public async Task A_lease_fill_runs_inside_the_loaders_locking_transaction_on_the_same_file()
    {
        // The token table is in the data file. A fill sent on the store's own connection while the loader holds
        // BEGIN IMMEDIATE would wait for it until the busy timeout and fail, leaving only the lease placeholder.
        Proc a = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        foreach (bool async in new[] { false, true })
        {
            Proc b = NewProcess();
            Sheet inB = b.Loader.Find<Sheet>(1)!;
            string key = b.Coherence.StoreKeyOf(inB);
            _store.Evict(key);
            await using (FreshScope scope = b.Coherence.BeginScope())
            {
                if (async)
                {
                    await scope.CheckAsync([inB]);
                }

                Assert.Equal("Q1", inB.Title);
            }

            Assert.Equal(SharedEntities.Protocol.SharedToken.Clean(1).Value, _store.Peek(key));
        }
    }
}

[Collection(PostgresFixture.Name)]
public sealed class PostgresLoaderStoryTests : LoaderStoryTests
{
    private readonly PostgresCluster _cluster;
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;

    public PostgresLoaderStoryTests(PostgresCluster cluster)
    {
        _cluster = cluster;

        // The cross-process store for PostgreSQL runs: the embedded store in a file of its own.
        _store = new SqliteSharedStore($"Data Source={_folder.File("tokens.db")}");
        using DbConnection connection = OpenConnection();
        Exec(connection, $"CREATE TABLE \"{SheetTable}\" (\"Id\" integer PRIMARY KEY, \"Version\" bigint NOT NULL, \"Title\" text NOT NULL)");
    }

    protected override DbDialect Dialect => DbDialect.PostgreSql;

    protected override ISharedStore Store => _store;

    protected override DbConnection NewConnection() => new NpgsqlConnection(_cluster.ConnectionString);

    protected override DbConnection OpenConnection()
    {
        var connection = new NpgsqlConnection(_cluster.ConnectionString);
        connection.Open();
        return connection;
    }

    protected override DbTransaction BeginSnapshot(Proc process)
    {
        DbTransaction transaction = process.Loader.BeginTransaction(IsolationLevel.RepeatableRead);
        using DbCommand read = process.Loader.Connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = $"SELECT count(*) FROM \"{SheetTable}\"";
        read.ExecuteScalar();
        return transaction;
    }

    protected override void Evict(string key) => _store.Evict(key);

    protected override void DisposeDatabase() => _folder.Dispose();

    [Fact]
    public async Task A_lease_fill_runs_inside_the_loaders_locking_transaction_on_the_same_file()
    {
        // The token table is in the data file. A fill sent on the store's own connection while the loader holds
        // BEGIN IMMEDIATE would wait for it until the busy timeout and fail, leaving only the lease placeholder.
        Proc a = NewProcess();
        await InsertSheetAsync(a, 1, "Q1");
        foreach (bool async in new[] { false, true })
        {
            Proc b = NewProcess();
            Sheet inB = b.Loader.Find<Sheet>(1)!;
            string key = b.Coherence.StoreKeyOf(inB);
            _store.Evict(key);
            await using (FreshScope scope = b.Coherence.BeginScope())
            {
                if (async)
                {
                    await scope.CheckAsync([inB]);
                }

                Assert.Equal("Q1", inB.Title);
            }

            Assert.Equal(SharedEntities.Protocol.SharedToken.Clean(1).Value, _store.Peek(key));
        }
    }
}
