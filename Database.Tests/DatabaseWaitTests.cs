using System.Data;
using System.Data.Common;
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Npgsql;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Database.Tests;

/// <summary>
/// <see cref="CoherenceOptions.DatabaseWaitTimeout"/>: a check whose lease fill meets another session's lock on the
/// row gives up the lease after the timeout and answers from a plain version read; inside an application transaction
/// it fails with <see cref="DatabaseWaitTimeoutException"/>. Nothing is left broken once the blocker lets go.
/// </summary>
public abstract class DatabaseWaitTests : IDisposable
{
    // The blocker holds its lock at most this long; the check must return well before (no tight timing: the bound is
    // generous, the blocker far longer than the option).
    private static readonly TimeSpan BlockerHolds = TimeSpan.FromSeconds(10);
    protected static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private readonly List<IDisposable> _owned = [];

    protected string SheetTable { get; } = "sheet_" + Guid.NewGuid().ToString("N")[..8];

    protected abstract DbDialect Dialect { get; }

    /// <summary>A store that lives apart from the data (so the lease is won even while the data file is locked).</summary>
    protected InMemorySharedStore Store { get; } = new();

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        DisposeDatabase();
        GC.SuppressFinalize(this);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_lease_fill_that_meets_a_row_lock_gives_up_the_lease_and_answers_from_the_database(bool async)
    {
        Proc reader = NewProcess(TimeSpan.FromMilliseconds(300));
        Sheet sheet = reader.Loader.Find<Sheet>(1)!; // a plain read: not blocked, and the store stays cold

        await using (Blocker blocker = Block())
        {
            var watch = Stopwatch.StartNew();
            await using (FreshScope scope = reader.Coherence.BeginScope())
            {
                if (async)
                {
                    await scope.CheckAsync([sheet]);
                }

                Assert.Equal("Q1", sheet.Title); // fresh, from the plain version read
            }

            Assert.True(watch.Elapsed < Bound, $"the check took {watch.Elapsed} with DatabaseWaitTimeout = 300 ms");
            Assert.Null(Store.Peek(reader.Coherence.StoreKeyOf(sheet))); // nothing filled without the lock
        }

        await AssertReadableAndWritableAsync(reader, sheet);
    }

    [Fact]
    public async Task Inside_an_application_transaction_a_lease_fill_that_meets_a_row_lock_fails_naming_the_entity_the_wait_and_the_option()
    {
        Proc reader = NewProcess(TimeSpan.FromMilliseconds(300));
        Sheet sheet = reader.Loader.Find<Sheet>(1)!;

        await using (Blocker blocker = Block())
        {
            using DbTransaction transaction = BeginApplicationTransaction(reader.Loader);
            var watch = Stopwatch.StartNew();
            await using (reader.Coherence.BeginScope())
            {
                DatabaseWaitTimeoutException timedOut = Assert.Throws<DatabaseWaitTimeoutException>(() => sheet.Title);
                Assert.Equal("Sheet", timedOut.EntityName);
                Assert.Equal(DatabaseWait.LockedVersionRead, timedOut.Wait);
                Assert.Equal(TimeSpan.FromMilliseconds(300), timedOut.Timeout);
                Assert.Contains("DatabaseWaitTimeout", timedOut.Message, StringComparison.Ordinal);
                Assert.IsAssignableFrom<DbException>(timedOut.InnerException);
            }

            Assert.True(watch.Elapsed < Bound, $"the check took {watch.Elapsed} with DatabaseWaitTimeout = 300 ms");
            transaction.Rollback();
            reader.Loader.Transaction = null;
        }

        await AssertReadableAndWritableAsync(reader, sheet);
    }

    [Fact]
    public async Task A_repair_that_meets_a_row_lock_gives_up_and_the_check_keeps_the_databases_row()
    {
        Proc reader = NewProcess(TimeSpan.FromMilliseconds(300));
        Sheet sheet = reader.Loader.Find<Sheet>(1)!;
        string key = reader.Coherence.StoreKeyOf(sheet);
        var raise = new StoreBatch();
        raise.Add(new StoreOperation(StoreOperationKind.Raise, key, SharedEntities.Protocol.SharedToken.Clean(5).Value, Ttl: TimeSpan.FromHours(1)));
        Store.Execute(raise); // the store ahead of the database: the check reloads, then repairs (a write)

        await using (Blocker blocker = Block())
        {
            var watch = Stopwatch.StartNew();
            await using (reader.Coherence.BeginScope())
            {
                Assert.Equal("Q1", sheet.Title); // the database wins; the repair gave up and is tried again next time
                Assert.Equal(1, sheet.Version);
            }

            Assert.True(watch.Elapsed < Bound, $"the check took {watch.Elapsed} with DatabaseWaitTimeout = 300 ms");
        }

        await using (reader.Coherence.BeginScope())
        {
            Assert.Equal("Q1", sheet.Title);
            Assert.Equal(6, sheet.Version); // repaired now: moved past the store's version
        }

        await reader.Coherence.RunInScopeAsync(async (_, ct) => (await reader.Loader.FindAsync<Sheet>(1, ct))!.Title = "Q2");
        await using (reader.Coherence.BeginScope())
        {
            Assert.Equal("Q2", sheet.Title);
            Assert.Equal(7, sheet.Version);
        }
    }

    protected abstract DbConnection OpenConnection(int defaultTimeoutSeconds = 30);

    /// <summary>Another session takes the lock a lease fill waits for (a row lock; SQLite: the file's write lock).</summary>
    protected abstract DbTransaction TakeLock(DbConnection connection);

    protected abstract void DisposeDatabase();

    /// <summary>An application transaction on the loader's connection that holds no lock yet.</summary>
    protected abstract DbTransaction BeginApplicationTransaction(DbEntityLoader loader);

    protected static void Exec(DbConnection connection, string sql) => LoaderStoryTests.Exec(connection, sql);

    protected void Seed()
    {
        using DbConnection connection = OpenConnection();
        Exec(connection, $"INSERT INTO \"{SheetTable}\" (\"Id\", \"Version\", \"Title\") VALUES (1, 1, 'Q1')");
    }

    private Proc NewProcess(TimeSpan waitTimeout)
    {
        var coherence = new Coherence(Store, new CoherenceOptions { DatabaseWaitTimeout = waitTimeout });
        DbConnection connection = OpenConnection();
        _owned.Add(coherence);
        _owned.Add(connection);
        return new Proc(coherence, new DbEntityLoader(coherence, connection, Dialect, DbEntityMapping.For<Sheet>(SheetTable)));
    }

    // The blocker's session holds its lock until the test lets go, or BlockerHolds at most.
    protected Blocker Block()
    {
        DbConnection connection = OpenConnection();
        DbTransaction transaction = TakeLock(connection);
        return new Blocker(connection, transaction, BlockerHolds);
    }

    private static async Task AssertReadableAndWritableAsync(Proc reader, Sheet sheet)
    {
        await using (reader.Coherence.BeginScope())
        {
            Assert.Equal("Q1", sheet.Title);
        }

        await reader.Coherence.RunInScopeAsync(async (_, ct) => (await reader.Loader.FindAsync<Sheet>(1, ct))!.Title = "Q2");
        await using (reader.Coherence.BeginScope())
        {
            Assert.Equal("Q2", sheet.Title);
            Assert.Equal(2, sheet.Version);
        }
    }

    private sealed record Proc(Coherence Coherence, DbEntityLoader Loader);

    protected sealed class Blocker : IAsyncDisposable
    {
        private readonly DbConnection _connection;
        private readonly CancellationTokenSource _release;
        private readonly Task _committed;

        public Blocker(DbConnection connection, DbTransaction transaction, TimeSpan holds)
        {
            _connection = connection;
            _release = new CancellationTokenSource(holds);
            _committed = Task.Run(async () =>
            {
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, _release.Token);
                }
                catch (OperationCanceledException)
                {
                }

                await transaction.CommitAsync(CancellationToken.None);
                await transaction.DisposeAsync();
            });
        }

        public async ValueTask DisposeAsync()
        {
            await _release.CancelAsync();
            await _committed;
            _release.Dispose();
            await _connection.DisposeAsync();
        }
    }
}

public sealed class SqliteDatabaseWaitTests : DatabaseWaitTests
{
    private readonly TempFolder _folder = new();

    public SqliteDatabaseWaitTests()
    {
        using DbConnection connection = OpenConnection();
        Exec(connection, "PRAGMA journal_mode = WAL");
        Exec(connection, $"CREATE TABLE \"{SheetTable}\" (\"Id\" INTEGER PRIMARY KEY, \"Version\" INTEGER NOT NULL, \"Title\" TEXT NOT NULL)");
        Seed();
    }

    protected override DbDialect Dialect => SqliteDialect.Instance;

    // The reader's own busy timeout is SQLite's 30 s default: the option, not the connection string, must bound the wait.
    protected override DbConnection OpenConnection(int defaultTimeoutSeconds = 30)
    {
        var connection = new SqliteConnection($"Data Source={_folder.File("app.db")};Default Timeout={defaultTimeoutSeconds}");
        connection.Open();
        return connection;
    }

    protected override DbTransaction TakeLock(DbConnection connection) => ((SqliteConnection)connection).BeginTransaction(deferred: false);

    [Fact]
    public async Task With_the_embedded_store_in_the_locked_file_the_check_answers_from_the_database()
    {
        // The store's own batches wait for the file's write lock too (its busy timeout), then answer Unavailable:
        // the check asks the database, whose plain read (WAL) does not wait. A guard: this was bounded before too.
        var store = new SqliteSharedStore($"Data Source={_folder.File("app.db")}", busyTimeout: TimeSpan.FromMilliseconds(300));
        using var coherence = new Coherence(store, new CoherenceOptions { DatabaseWaitTimeout = TimeSpan.FromMilliseconds(300) });
        using DbConnection connection = OpenConnection();
        var loader = new DbEntityLoader(coherence, connection, Dialect, DbEntityMapping.For<Sheet>(SheetTable));
        Sheet sheet = loader.Find<Sheet>(1)!;
        await using (Blocker blocker = Block())
        {
            var watch = Stopwatch.StartNew();
            await using (coherence.BeginScope())
            {
                Assert.Equal("Q1", sheet.Title);
            }

            Assert.True(watch.Elapsed < Bound, $"the check took {watch.Elapsed} with a 300 ms busy timeout");
        }
    }

    // Deferred: BEGIN IMMEDIATE (what Microsoft.Data.Sqlite begins for the other levels) would itself wait for the blocker.
    protected override DbTransaction BeginApplicationTransaction(DbEntityLoader loader)
    {
        SqliteTransaction transaction = ((SqliteConnection)loader.Connection).BeginTransaction(deferred: true);
        loader.Transaction = transaction;
        return transaction;
    }

    protected override void DisposeDatabase() => _folder.Dispose();
}

[Collection(PostgresFixture.Name)]
public sealed class PostgresDatabaseWaitTests : DatabaseWaitTests
{
    private readonly PostgresCluster _cluster;

    public PostgresDatabaseWaitTests(PostgresCluster cluster)
    {
        _cluster = cluster;
        using DbConnection connection = OpenConnection();
        Exec(connection, $"CREATE TABLE \"{SheetTable}\" (\"Id\" integer PRIMARY KEY, \"Version\" bigint NOT NULL, \"Title\" text NOT NULL)");
        Seed();
    }

    protected override DbDialect Dialect => DbDialect.PostgreSql;

    protected override DbConnection OpenConnection(int defaultTimeoutSeconds = 30)
    {
        var connection = new NpgsqlConnection(_cluster.ConnectionString);
        connection.Open();
        return connection;
    }

    protected override DbTransaction TakeLock(DbConnection connection)
    {
        DbTransaction transaction = connection.BeginTransaction();
        using DbCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT \"Version\" FROM \"{SheetTable}\" WHERE \"Id\" = 1 FOR UPDATE";
        command.ExecuteScalar();
        return transaction;
    }

    protected override DbTransaction BeginApplicationTransaction(DbEntityLoader loader) => loader.BeginTransaction(IsolationLevel.ReadCommitted);

    [Fact]
    public async Task A_version_read_that_waits_for_a_table_lock_fails_after_the_command_timeout_naming_the_wait()
    {
        var coherence = new Coherence(Store, new CoherenceOptions { DatabaseWaitTimeout = TimeSpan.FromMilliseconds(300) });
        await using var connection = (NpgsqlConnection)OpenConnection();
        var loader = new DbEntityLoader(coherence, connection, Dialect, DbEntityMapping.For<Sheet>(SheetTable));
        Sheet sheet = loader.Find<Sheet>(1)!;
        string key = coherence.StoreKeyOf(sheet);
        var raise = new StoreBatch();
        raise.Add(new StoreOperation(StoreOperationKind.Raise, key, SharedEntities.Protocol.SharedToken.Dirty(1).Value, Ttl: TimeSpan.FromHours(1)));
        Store.Execute(raise); // a write in flight: the check asks the database with a plain version read

        await using (var blocker = (NpgsqlConnection)OpenConnection())
        {
            // Even a plain SELECT waits for ACCESS EXCLUSIVE (a migration's ALTER TABLE); only the command timeout
            // (300 ms rounded up to a second, plus the one-second backstop) bounds it.
            await using NpgsqlTransaction migration = await blocker.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand($"LOCK TABLE \"{SheetTable}\" IN ACCESS EXCLUSIVE MODE", blocker, migration))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            var watch = Stopwatch.StartNew();
            await using (FreshScope scope = coherence.BeginScope())
            {
                DatabaseWaitTimeoutException timedOut = await Assert.ThrowsAsync<DatabaseWaitTimeoutException>(() => scope.CheckAsync([sheet]));
                Assert.Equal(DatabaseWait.VersionRead, timedOut.Wait);
                Assert.Equal("Sheet", timedOut.EntityName);
            }

            Assert.True(watch.Elapsed < Bound, $"the check took {watch.Elapsed} with DatabaseWaitTimeout = 300 ms");
            await migration.RollbackAsync();
        }

        await using (coherence.BeginScope())
        {
            Assert.Equal("Q1", sheet.Title); // the connection survived the cancelled statement
        }

        coherence.Dispose();
    }

    [Fact]
    public async Task A_lease_fill_in_an_application_transaction_gives_the_transactions_lock_timeout_back()
    {
        var coherence = new Coherence(Store, new CoherenceOptions { DatabaseWaitTimeout = TimeSpan.FromMilliseconds(300) });
        await using var connection = (NpgsqlConnection)OpenConnection();
        var loader = new DbEntityLoader(coherence, connection, Dialect, DbEntityMapping.For<Sheet>(SheetTable));
        Sheet sheet = loader.Find<Sheet>(1)!;
        using DbTransaction transaction = loader.BeginTransaction(IsolationLevel.ReadCommitted);
        Exec(connection, "SET LOCAL lock_timeout = '7s'");
        await using (coherence.BeginScope())
        {
            Assert.Equal("Q1", sheet.Title); // won the lease, locked read bounded by 300 ms, filled
        }

        Assert.Equal(SharedEntities.Protocol.SharedToken.Clean(1).Value, Store.Peek(coherence.StoreKeyOf(sheet)));
        await using var show = new NpgsqlCommand("SHOW lock_timeout", connection);
        Assert.Equal("7s", await show.ExecuteScalarAsync());
        transaction.Rollback();
        coherence.Dispose();
    }

    protected override void DisposeDatabase()
    {
        using DbConnection connection = OpenConnection();
        Exec(connection, $"DROP TABLE IF EXISTS \"{SheetTable}\"");
    }
}
