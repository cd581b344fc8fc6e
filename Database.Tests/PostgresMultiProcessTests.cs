using Npgsql;
using SharedEntities.Memcached.Tests;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Database.Tests;

/// <summary>
/// Real OS processes (Database.Tests.Worker) on a private PostgreSQL cluster and a private memcached: the production
/// setup. Each test has a database of its own and a memcached of its own.
/// </summary>
[Collection(PostgresFixture.Name)]
public sealed class PostgresMultiProcessTests(PostgresCluster cluster) : IDisposable
{
    private const int Workers = 4;
    private readonly TempFolder _folder = new();
    private readonly MemcachedServer _memcached = new();

    public void Dispose()
    {
        _memcached.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task No_lost_update_and_no_stale_read_while_the_seed_protocol_loses_updates()
    {
        const int loops = 500;
        string database = CreateDatabase();
        string[] logs = Logs();
        WorkerResult[] results = await Task.WhenAll(logs.Select(log => Increment(database, loops, log)));

        Assert.All(results, r => Assert.True(r.ExitCode == 0 && r.Commits == loops, $"a worker did not complete its {loops} commits: {r}"));
        Assert.True(results.Sum(r => r.Conflicts) > 0, "no conflict: the processes did not contend");
        Assert.Equal(results.Sum(r => r.Commits), CounterValue(database));
        MultiProcess.AssertNoStaleRead(logs);

        Execute(database, "UPDATE \"Counter\" SET \"Value\" = 0");
        WorkerResult[] seed = await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => MultiProcess.RunAsync("seed", "postgres:" + database, "-", loops, log: null)));
        long seedFinal = CounterValue(database);
        Assert.True(seedFinal < seed.Sum(r => r.Commits), $"the seed protocol lost no update ({seedFinal} of {seed.Sum(r => r.Commits)}): the test cannot tell");
    }

    [Fact]
    public async Task A_memcached_restart_mid_run_loses_no_update_and_accepts_no_stale_read()
    {
        const int loops = 300;
        string database = CreateDatabase();
        string[] logs = Logs();
        Task<WorkerResult[]> run = Task.WhenAll(logs.Select(log => Increment(database, loops, log)));

        // Restart once a quarter of the commits are done (bounded: a worker crash ends the wait too).
        long restartedAt = 0;
        for (int i = 0; i < 600 && !run.IsCompleted; i++)
        {
            if (logs.Where(File.Exists).Sum(log => MultiProcess.LoggedCommits(log)) >= Workers * loops / 4)
            {
                _memcached.Restart(); // every token is gone; the port stays the same
                restartedAt = DateTime.UtcNow.Ticks;
                break;
            }

            await Task.Delay(50);
        }

        WorkerResult[] results = await run;
        Assert.True(restartedAt != 0, "the workers finished before memcached could be restarted: the test proved nothing");
        Assert.All(results, r => Assert.True(r.ExitCode == 0 && r.Commits == loops, $"a worker did not complete its {loops} commits: {r}"));
        Assert.Equal(results.Sum(r => r.Commits), CounterValue(database));
        MultiProcess.AssertNoStaleRead(logs);
        int commitsAfterRestart = logs.SelectMany(File.ReadLines)
            .Count(l => l.StartsWith("commit ", StringComparison.Ordinal) && long.Parse(l.Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture) > restartedAt);
        Assert.True(commitsAfterRestart > 0, "no commit after the restart");
        Assert.True(_memcached.Stat("curr_items") > 0, "the restarted memcached was never used again");
    }

    [Fact]
    public async Task A_writer_killed_between_commit_and_publish_loses_no_update_and_leaves_no_stale_read()
    {
        const int loops = 300;
        const int dieAt = 25;
        string database = CreateDatabase();
        string[] logs = Logs();
        var die = new Dictionary<string, string> { ["SHAREDENTITIES_WORKER_DIE_BEFORE_PUBLISH"] = dieAt.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        WorkerResult[] results = await Task.WhenAll(logs.Select((log, i) => Increment(database, loops, log, i == 0 ? die : null)));

        // The first worker killed itself after its 25th commit and before that commit's publish.
        Assert.NotEqual(0, results[0].ExitCode);
        Assert.Equal(dieAt, MultiProcess.LoggedCommits(logs[0]));
        Assert.All(results.Skip(1), r => Assert.True(r.ExitCode == 0 && r.Commits == loops, $"a worker did not complete its {loops} commits: {r}"));
        Assert.Equal(dieAt + results.Skip(1).Sum(r => r.Commits), CounterValue(database));
        MultiProcess.AssertNoStaleRead(logs);
    }

    private Task<WorkerResult> Increment(string database, int loops, string log, IReadOnlyDictionary<string, string>? environment = null) =>
        MultiProcess.RunAsync("increment", "postgres:" + database, "memcached:" + _memcached.Address, loops, log, environment);

    private string[] Logs() => [.. Enumerable.Range(0, Workers).Select(i => _folder.File($"worker{i}.log"))];

    /// <summary>A database of this test's own with the counter row at 0; returns its connection string.</summary>
    private string CreateDatabase()
    {
        string name = "mp_" + Guid.NewGuid().ToString("N")[..12];
        Execute(cluster.ConnectionString, $"CREATE DATABASE {name}");
        string database = new NpgsqlConnectionStringBuilder(cluster.ConnectionString) { Database = name }.ToString();
        Execute(database, "CREATE TABLE \"Counter\" (\"Id\" integer PRIMARY KEY, \"Version\" bigint NOT NULL, \"Value\" bigint NOT NULL); INSERT INTO \"Counter\" VALUES (1, 1, 0);");
        return database;
    }

    private static long CounterValue(string database)
    {
        using var connection = new NpgsqlConnection(database);
        connection.Open();
        using NpgsqlCommand read = connection.CreateCommand();
        read.CommandText = "SELECT \"Value\" FROM \"Counter\" WHERE \"Id\" = 1";
        return (long)read.ExecuteScalar()!;
    }

    private static void Execute(string database, string sql)
    {
        using var connection = new NpgsqlConnection(database);
        connection.Open();
        using NpgsqlCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
