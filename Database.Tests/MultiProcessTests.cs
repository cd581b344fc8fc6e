using Microsoft.Data.Sqlite;

namespace SharedEntities.Database.Tests;

/// <summary>Real OS processes (Database.Tests.Worker) on one SQLite file with the embedded store.</summary>
public sealed class MultiProcessTests : IDisposable
{
    private const int Workers = 4;
    private const int Loops = 500;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task No_lost_update_through_SharedEntities_while_the_seed_protocol_loses_updates()
    {
        string file = _folder.File("app.db");
        Execute(file, "PRAGMA journal_mode = WAL; CREATE TABLE \"Counter\" (\"Id\" INTEGER PRIMARY KEY, \"Version\" INTEGER NOT NULL, \"Value\" INTEGER NOT NULL); " +
            "INSERT INTO \"Counter\" VALUES (1, 1, 0);");
        string database = "sqlite:" + file;

        // SharedEntities: every successful commit counts exactly once.
        string[] logs = [.. Enumerable.Range(0, Workers).Select(i => _folder.File($"worker{i}.log"))];
        WorkerResult[] results = await Task.WhenAll(logs.Select(log => MultiProcess.RunAsync("increment", database, "embedded", Loops, log)));
        Assert.All(results, r => Assert.True(r.ExitCode == 0 && r.Commits == Loops, $"a worker did not complete its {Loops} commits: {r}"));
        Assert.True(results.Sum(r => r.Conflicts) > 0, "no conflict: the processes did not contend");
        Assert.Equal(results.Sum(r => r.Commits), CounterValue(file));
        MultiProcess.AssertNoStaleRead(logs);

        // The seed's protocol ported literally (read, work, write back, no version guard): updates get lost.
        Execute(file, "UPDATE \"Counter\" SET \"Value\" = 0");
        WorkerResult[] seed = await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => MultiProcess.RunAsync("seed", database, "-", Loops, log: null)));
        long seedFinal = CounterValue(file);
        Assert.True(seedFinal < seed.Sum(r => r.Commits), $"the seed protocol lost no update ({seedFinal} of {seed.Sum(r => r.Commits)}): the test cannot tell");
    }

    [Fact]
    public void The_stale_read_check_can_fail()
    {
        List<(long, long)> reads = [(1, 300)];
        List<(long, long)> commits = [(1, 100), (2, 200)];
        Assert.Contains("read version 1 after version 2", MultiProcess.FirstStaleRead(reads, commits), StringComparison.Ordinal);
        Assert.Null(MultiProcess.FirstStaleRead([(2, 300)], commits));
        Assert.Null(MultiProcess.FirstStaleRead([(1, 200)], commits)); // version 2's commit had not finished before 200
    }

    private static long CounterValue(string file)
    {
        using var connection = new SqliteConnection($"Data Source={file}");
        connection.Open();
        using SqliteCommand read = connection.CreateCommand();
        read.CommandText = "SELECT \"Value\" FROM \"Counter\" WHERE \"Id\" = 1";
        return (long)read.ExecuteScalar()!;
    }

    private static void Execute(string file, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={file}");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
