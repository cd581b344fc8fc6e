using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Npgsql;
using SharedEntities.AdoNet;
using SharedEntities.Caching;
using SharedEntities.Memcached;
using SharedEntities.Memcached.Tests;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Database.Tests;

/// <summary>A versioned entity with a mutable value, which the entity cache must copy.</summary>
[SharedEntity]
public partial class Attachment
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Name { get; set; }

    public partial byte[] Data { get; set; }
}

/// <summary>
/// One <see cref="DbEntityLoader"/> over a <see cref="DbDataSource"/> for the whole process, its finds served from the
/// entity cache, and entities kept across scopes: on SQLite with the embedded store and on PostgreSQL with memcached.
/// "Another process" is a runtime of its own with a connection-bound loader.
/// </summary>
public abstract class DataSourceLoaderTests : IDisposable
{
    private const int Flows = 16;
    private const int IncrementsPerFlow = 8;
    private const int Counters = 4;

    private readonly List<IDisposable> _owned = [];

    protected string SheetTable { get; } = "sheet_" + Guid.NewGuid().ToString("N")[..8];

    protected string OtherSheetTable { get; } = "other_sheet_" + Guid.NewGuid().ToString("N")[..8];

    protected string CounterTable { get; } = "counter_" + Guid.NewGuid().ToString("N")[..8];

    protected string AttachmentTable { get; } = "attachment_" + Guid.NewGuid().ToString("N")[..8];

    protected abstract DbDialect Dialect { get; }

    protected abstract ISharedStore Store { get; }

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        DisposeServers();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Sixteen_flows_share_one_loader_every_commit_is_guarded_and_each_flow_reads_at_least_its_own_commits()
    {
        Proc a = NewProcess();
        for (int id = 1; id <= Counters; id++)
        {
            await a.Loader.InsertAsync(new Counter { Id = id, Version = 1, Value = 0 });
        }

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        int refused = 0;
        Task[] flows = [.. Enumerable.Range(0, Flows).Select(flow => Task.Run(
            async () =>
            {
                var committed = new long[Counters + 1]; // the value this flow last committed, per counter
                for (int i = 0; i < IncrementsPerFlow; i++)
                {
                    int id = 1 + ((flow + i) % Counters);
                    for (int attempt = 1; ; attempt++)
                    {
                        try
                        {
                            await using FreshScope scope = a.Coherence.BeginScope();
                            Counter counter = (await a.Loader.FindAsync<Counter>(id, stop.Token))!;
                            Assert.True(counter.Value >= committed[id], $"flow {flow} read {counter.Value} after committing {committed[id]}");
                            counter.Value++;
                            await scope.CommitAsync(stop.Token);
                            committed[id] = counter.Value;
                            break;
                        }
                        catch (Exception ex) when (ex is StaleEntityException or SharedStoreUnavailableException && attempt < 200)
                        {
                            Interlocked.Increment(ref refused); // another flow committed first: a new scope reads its commit
                        }
                    }
                }
            },
            stop.Token))];
        await Task.WhenAll(flows).WaitAsync(TimeSpan.FromSeconds(150));

        long total = 0;
        for (int id = 1; id <= Counters; id++)
        {
            (long value, long version) = CounterInDatabase(id);
            Assert.Equal(value + 1, version); // one version per committed increment: no write lost, none doubled
            total += value;
        }

        Assert.Equal(Flows * IncrementsPerFlow, total);
        await using (a.Coherence.BeginScope())
        {
            IReadOnlyList<Counter> read = await a.Loader.FindManyAsync<Counter>(Enumerable.Range(1, Counters).Cast<object>());
            Assert.Equal(total, read.Sum(c => c.Value));
        }
    }

    [Fact]
    public async Task Finds_served_from_the_cache_run_no_statement_and_give_each_flow_its_own_instance()
    {
        (Proc a, _) = await WarmAsync();
        int before = a.Loader.Statements;
        Sheet[] served = await Task.WhenAll(Enumerable.Range(0, Flows).Select(_ => Task.Run(async () =>
        {
            await using FreshScope scope = a.Coherence.BeginScope();
            Sheet sheet = (await a.Loader.FindAsync<Sheet>(1))!;
            Assert.Equal("Q1", sheet.Title);
            Assert.Equal(1, sheet.Version);
            return sheet;
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(0, a.Loader.Statements - before);
        Assert.Equal(Flows, served.Distinct().Count());

        // The synchronous find is served the same way.
        await using (a.Coherence.BeginScope())
        {
            Sheet sheet = a.Loader.Find<Sheet>(1)!;
            Assert.Equal("Q1", sheet.Title);
            Assert.DoesNotContain(sheet, served);
        }

        Assert.Equal(0, a.Loader.Statements - before);
    }

    [Fact]
    public async Task A_served_instance_has_copies_of_mutable_values()
    {
        Proc a = NewProcess();
        await a.Loader.InsertAsync(new Attachment { Id = 1, Version = 1, Name = "a", Data = [1, 2, 3] });
        Attachment loaded = (await a.Loader.FindAsync<Attachment>(1))!;
        int before = a.Loader.Statements;
        Attachment served = (await a.Loader.FindAsync<Attachment>(1))!;
        Assert.Equal(0, a.Loader.Statements - before);
        Assert.Equal([1, 2, 3], served.Data);
        Assert.NotSame(loaded.Data, served.Data);

        served.Data[0] = 9; // changed in place, as an application may
        loaded.Data[1] = 9;
        Attachment again = (await a.Loader.FindAsync<Attachment>(1))!;
        Assert.Equal([1, 2, 3], again.Data);
        Assert.Equal(0, a.Loader.Statements - before);
    }

    [Fact]
    public async Task A_commit_by_another_process_makes_the_next_find_load_the_new_row()
    {
        (Proc a, string key) = await WarmAsync();
        Proc other = NewConnectionProcess();
        await other.Coherence.RunInScopeAsync(async (_, ct) => (await other.Loader.FindAsync<Sheet>(1, ct))!.Title = "from another process");

        int before = a.Loader.Statements;
        await using (a.Coherence.BeginScope())
        {
            Sheet sheet = (await a.Loader.FindAsync<Sheet>(1))!;
            Assert.Equal("from another process", sheet.Title); // the store holds clean(2): the cached row of version 1 is not served
            Assert.Equal(2, sheet.Version);
        }

        Assert.Equal(1, a.Loader.Statements - before);
        Assert.Equal(2, a.Coherence.Cache.Find(key)!.Version);
        Assert.Equal("from another process", (await a.Loader.FindAsync<Sheet>(1))!.Title); // served again, at version 2
        Assert.Equal(1, a.Loader.Statements - before);

        // A commit of this process forgets its row: the next find reads the committed row again.
        await a.Coherence.RunInScopeAsync(async (_, ct) => (await a.Loader.FindAsync<Sheet>(1, ct))!.Title = "from here");
        Assert.Null(a.Coherence.Cache.Find(key));
        Assert.Equal("from here", (await a.Loader.FindAsync<Sheet>(1))!.Title);
    }

    [Fact]
    public async Task Loaders_built_per_request_with_equal_mappings_share_rows_and_other_mappings_do_not()
    {
        (Proc a, _) = await WarmAsync();
        var request = new DbEntityLoader(a.Coherence, a.DataSource, Dialect, DbEntityMapping.For<Sheet>(SheetTable));
        Assert.Equal("Q1", (await request.FindAsync<Sheet>(1))!.Title);
        Assert.Equal(0, request.Statements);

        // The same class over another table: the same store key, but not the same row.
        Execute($"INSERT INTO \"{OtherSheetTable}\" (\"Id\", \"Version\", \"Title\") VALUES (1, 1, 'other')");
        var other = new DbEntityLoader(a.Coherence, a.DataSource, Dialect, DbEntityMapping.For<Sheet>(OtherSheetTable));
        Assert.Equal("other", (await other.FindAsync<Sheet>(1))!.Title);
        Assert.Equal(1, other.Statements);
    }

    [Fact]
    public async Task Reads_inside_an_application_transaction_are_never_served_nor_offered()
    {
        (Proc a, string key) = await WarmAsync();
        CachedEntity cached = a.Coherence.Cache.Find(key)!;

        // A connection-bound loader of the same runtime, in a transaction of the application's.
        await using DbConnection connection = OpenConnection();
        var bound = new DbEntityLoader(a.Coherence, connection, Dialect, DbEntityMapping.For<Sheet>(SheetTable));
        using (DbTransaction transaction = bound.BeginTransaction(IsolationLevel.ReadCommitted))
        {
            // (The values are looked at without a check: on SQLite the store would wait for the transaction's write lock.)
            await using (a.Coherence.BeginScope())
            {
                Assert.Equal("Q1", TitleOf((await bound.FindAsync<Sheet>(1))!));
                Assert.Equal(1, bound.Statements); // not served
                Assert.Same(cached, a.Coherence.Cache.Find(key)); // not offered

                a.Coherence.Cache.Clear();
                Assert.Equal("Q1", TitleOf((await bound.FindAsync<Sheet>(1))!));
                Assert.Null(a.Coherence.Cache.Find(key));
            }

            transaction.Rollback();
        }

        bound.Transaction = null;
        Assert.Equal("Q1", (await bound.FindAsync<Sheet>(1))!.Title); // outside it, the row refills the cache
        Assert.NotNull(a.Coherence.Cache.Find(key));
    }

    [Fact]
    public async Task A_data_source_loader_inside_a_TransactionScope_neither_serves_nor_offers_nor_commits()
    {
        (Proc a, string key) = await WarmAsync();
        CachedEntity cached = a.Coherence.Cache.Find(key)!;
        Assert.False(a.Loader.ReadsInTransaction);

        using (var ambient = new System.Transactions.TransactionScope(System.Transactions.TransactionScopeAsyncFlowOption.Enabled))
        {
            Assert.True(a.Loader.ReadsInTransaction);
            int before = a.Loader.Statements;
            await using FreshScope scope = a.Coherence.BeginScope();
            Sheet sheet = (await a.Loader.FindAsync<Sheet>(1))!;
            Assert.Equal("Q1", sheet.Title);
            Assert.True(a.Loader.Statements - before >= 1); // loaded, not served
            Assert.Same(cached, a.Coherence.Cache.Find(key)); // not offered

            sheet.Title = "in the ambient transaction";
            InvalidOperationException refused = await Assert.ThrowsAsync<InvalidOperationException>(() => scope.CommitAsync());
            Assert.Contains("TransactionScope", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal("Q1", TitleInDatabase(1));
    }

    [Fact]
    public void A_data_source_loader_has_no_connection_and_no_application_transaction_of_its_own()
    {
        Proc a = NewProcess();
        Assert.Same(a.DataSource, a.Loader.DataSource);
        Assert.Null(a.Loader.Transaction);
        Assert.Contains("DbDataSource", Assert.Throws<InvalidOperationException>(() => a.Loader.Connection).Message, StringComparison.Ordinal);
        InvalidOperationException begin = Assert.Throws<InvalidOperationException>(() => a.Loader.BeginTransaction(IsolationLevel.ReadCommitted));
        Assert.Contains("connection-bound loader", begin.Message, StringComparison.Ordinal);
        using DbConnection connection = OpenConnection();
        using DbTransaction transaction = connection.BeginTransaction();
        Assert.Throws<InvalidOperationException>(() => a.Loader.Transaction = transaction);
        Assert.Throws<InvalidOperationException>(() => a.Loader.CheckConnection = connection);
        a.Loader.Transaction = null; // no transaction is fine

        Proc bound = NewConnectionProcess();
        Assert.Null(bound.Loader.DataSource);
        Assert.NotNull(bound.Loader.Connection);
    }

    [Fact]
    public async Task An_entity_kept_across_scopes_is_checked_and_reloaded_on_connections_of_the_pool()
    {
        Proc a = NewProcess();
        Proc other = NewConnectionProcess();
        await a.Loader.InsertAsync(new Sheet { Id = 1, Version = 1, Title = "Q1" });
        Sheet kept = (await a.Loader.FindAsync<Sheet>(1))!; // held, as a static or a singleton would

        for (int round = 2; round <= 4; round++)
        {
            string title = $"Q{round}";
            await other.Coherence.RunInScopeAsync(async (_, ct) => (await other.Loader.FindAsync<Sheet>(1, ct))!.Title = title);
            await using (a.Coherence.BeginScope())
            {
                Assert.Equal(title, kept.Title);
                Assert.Equal(round, kept.Version);
            }
        }

        // The reload refilled the cache: a find by key in a new scope is served at the newest version.
        int before = a.Loader.Statements;
        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("Q4", (await a.Loader.FindAsync<Sheet>(1))!.Title);
        }

        Assert.Equal(0, a.Loader.Statements - before);

        // And a write of the kept entity commits through the data source too.
        await a.Coherence.RunInScopeAsync((_, _) =>
        {
            kept.Title = "written by the keeper";
            return Task.CompletedTask;
        });
        Assert.Equal("written by the keeper", TitleInDatabase(1));
    }

    [Fact]
    public async Task A_lease_fill_through_a_data_source_loader_fills_the_token_and_serves_the_cached_row()
    {
        (Proc a, string key) = await WarmAsync();
        Evict(key); // cold: the find wins the lease, reads the version under a lock, fills, and serves the cached row

        using var hits = new MetricCollector<long>(a.Coherence.Metrics.CacheHits);
        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("Q1", (await a.Loader.FindAsync<Sheet>(1))!.Title);
        }

        Assert.Equal(1, hits.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(SharedEntities.Protocol.SharedToken.Clean(1).Value, Peek(key));
    }

    // A process with sheet 1 ("Q1") inserted and found once, outside a scope: its row is in the entity cache.
    private async Task<(Proc Process, string Key)> WarmAsync()
    {
        Proc a = NewProcess();
        await a.Loader.InsertAsync(new Sheet { Id = 1, Version = 1, Title = "Q1" });
        Assert.Equal("Q1", (await a.Loader.FindAsync<Sheet>(1))!.Title); // loaded, and offered to the cache
        string key = a.Coherence.StoreKeyOf(new Sheet { Id = 1 });
        Assert.NotNull(a.Coherence.Cache.Find(key));
        return (a, key);
    }

    protected abstract DbConnection OpenConnection();

    protected abstract DbDataSource NewDataSource();

    protected abstract void Evict(string key);

    protected abstract void DisposeServers();

    protected long? Peek(string key)
    {
        var read = new StoreBatch();
        read.AddRead(key);
        Store.Execute(read);
        return read[0].Status == StoreStatus.Hit ? read[0].Value : null;
    }

    protected void Execute(string sql)
    {
        using DbConnection connection = OpenConnection();
        using DbCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>A process with one data-source loader.</summary>
    protected Proc NewProcess()
    {
        var coherence = new Coherence(Store);
        DbDataSource dataSource = NewDataSource();
        _owned.Add(coherence);
        _owned.Add(dataSource);
        return new Proc(coherence, new DbEntityLoader(coherence, dataSource, Dialect, Mappings()), dataSource);
    }

    /// <summary>Another process, with a connection-bound loader.</summary>
    protected Proc NewConnectionProcess()
    {
        var coherence = new Coherence(Store);
        DbConnection connection = OpenConnection();
        _owned.Add(coherence);
        _owned.Add(connection);
        return new Proc(coherence, new DbEntityLoader(coherence, connection, Dialect, Mappings()), null!);
    }

    private DbEntityMapping[] Mappings() =>
        [DbEntityMapping.For<Sheet>(SheetTable), DbEntityMapping.For<Counter>(CounterTable), DbEntityMapping.For<Attachment>(AttachmentTable)];

    private static string? TitleOf(ISharedEntity sheet) => (string?)sheet.GetSharedValue(0);

    private string? TitleInDatabase(int id)
    {
        using DbConnection connection = OpenConnection();
        using DbCommand command = connection.CreateCommand();
        command.CommandText = $"SELECT \"Title\" FROM \"{SheetTable}\" WHERE \"Id\" = {id}";
        return command.ExecuteScalar() as string;
    }

    private (long Value, long Version) CounterInDatabase(int id)
    {
        using DbConnection connection = OpenConnection();
        using DbCommand command = connection.CreateCommand();
        command.CommandText = $"SELECT \"Value\", \"Version\" FROM \"{CounterTable}\" WHERE \"Id\" = {id}";
        using DbDataReader reader = command.ExecuteReader();
        Assert.True(reader.Read());
        return (Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture));
    }

    protected void CreateTables(string keyType, string bigint, string text, string bytes)
    {
        Execute($"CREATE TABLE \"{SheetTable}\" (\"Id\" {keyType} PRIMARY KEY, \"Version\" {bigint} NOT NULL, \"Title\" {text} NOT NULL)");
        Execute($"CREATE TABLE \"{OtherSheetTable}\" (\"Id\" {keyType} PRIMARY KEY, \"Version\" {bigint} NOT NULL, \"Title\" {text} NOT NULL)");
        Execute($"CREATE TABLE \"{CounterTable}\" (\"Id\" {keyType} PRIMARY KEY, \"Version\" {bigint} NOT NULL, \"Value\" {bigint} NOT NULL)");
        Execute($"CREATE TABLE \"{AttachmentTable}\" (\"Id\" {keyType} PRIMARY KEY, \"Version\" {bigint} NOT NULL, \"Name\" {text} NOT NULL, \"Data\" {bytes} NOT NULL)");
    }

    protected sealed record Proc(Coherence Coherence, DbEntityLoader Loader, DbDataSource DataSource);
}

public sealed class SqliteDataSourceLoaderTests : DataSourceLoaderTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;

    public SqliteDataSourceLoaderTests()
    {
        _store = new SqliteSharedStore(ConnectionString);
        Execute("PRAGMA journal_mode = WAL"); // kept by the file
        CreateTables("INTEGER", "INTEGER", "TEXT", "BLOB");
    }

    protected override DbDialect Dialect => SqliteDialect.Instance;

    protected override ISharedStore Store => _store;

    private string ConnectionString => $"Data Source={_folder.File("app.db")};Default Timeout=10";

    protected override DbConnection OpenConnection()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        return connection;
    }

    protected override DbDataSource NewDataSource() => SqliteFactory.Instance.CreateDataSource(ConnectionString);

    protected override void Evict(string key) => _store.Evict(key);

    protected override void DisposeServers() => _folder.Dispose();
}

[Collection(PostgresFixture.Name)]
public sealed class PostgresMemcachedDataSourceLoaderTests : DataSourceLoaderTests
{
    private readonly PostgresCluster _cluster;
    private readonly MemcachedServer _memcached = new();
    private readonly MemcachedStore _store;

    public PostgresMemcachedDataSourceLoaderTests(PostgresCluster cluster)
    {
        _cluster = cluster;
        _store = new MemcachedStore(new MemcachedClientOptions { Servers = _memcached.Address });
        CreateTables("integer", "bigint", "text", "bytea");
    }

    protected override DbDialect Dialect => DbDialect.PostgreSql;

    protected override ISharedStore Store => _store;

    protected override DbConnection OpenConnection()
    {
        var connection = new NpgsqlConnection(_cluster.ConnectionString);
        connection.Open();
        return connection;
    }

    protected override DbDataSource NewDataSource() => NpgsqlDataSource.Create(_cluster.ConnectionString);

    protected override void Evict(string key) => Assert.Contains("HD", _memcached.Raw($"md {key}\r\n"), StringComparison.Ordinal);

    protected override void DisposeServers()
    {
        _store.Dispose();
        NpgsqlConnection.ClearPool(new NpgsqlConnection(_cluster.ConnectionString)); // the data sources' pools are disposed with them
        Execute($"DROP TABLE \"{SheetTable}\", \"{OtherSheetTable}\", \"{CounterTable}\", \"{AttachmentTable}\"");
        _memcached.Dispose();
    }
}
