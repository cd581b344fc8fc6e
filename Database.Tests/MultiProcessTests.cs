using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace SharedEntities.Database.Tests;

/// <summary>Real OS processes (Database.Tests.Worker) on one SQLite file with the embedded store.</summary>
public sealed class MultiProcessTests : IDisposable
{
    private const int Workers = 4;
    private const int Loops = 150;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task No_lost_update_through_SharedEntities_while_the_seed_protocol_loses_updates()
    {
        string db = _folder.File("app.db");
        using (var connection = new SqliteConnection($"Data Source={db}"))
        {
            connection.Open();
            using SqliteCommand create = connection.CreateCommand();
            create.CommandText =
                "PRAGMA journal_mode = WAL; CREATE TABLE \"Counter\" (\"Id\" INTEGER PRIMARY KEY, \"Version\" INTEGER NOT NULL, \"Value\" INTEGER NOT NULL); " +
                "INSERT INTO \"Counter\" VALUES (1, 1, 0);";
            create.ExecuteNonQuery();
        }

        // SharedEntities: every successful commit counts exactly once.
        string[] logs = [.. Enumerable.Range(0, Workers).Select(i => _folder.File($"worker{i}.log"))];
        int[] successes = await Task.WhenAll(logs.Select(log => RunWorkerAsync("increment", db, Loops, log)));
        Assert.All(successes, s => Assert.True(s > 0, "every worker committed at least once"));
        Assert.Equal(successes.Sum(), CounterValue(db));
        CheckNoStaleRead(logs);

        // The seed's protocol ported literally (read, work, write back, no version guard): updates get lost.
        SetCounter(db, 0);
        int[] seedSuccesses = await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => RunWorkerAsync("seed", db, Loops, log: null)));
        long seedFinal = CounterValue(db);
        Assert.True(seedFinal < seedSuccesses.Sum(), $"the seed protocol lost no update ({seedFinal} of {seedSuccesses.Sum()}): the test cannot tell");
    }

    /// <summary>No scope accepted a version older than one whose commit had finished before the scope's check began.</summary>
    private static void CheckNoStaleRead(string[] logs)
    {
        var reads = new List<(long Version, long At)>();
        var commits = new List<(long Version, long At)>();
        foreach (string line in logs.SelectMany(File.ReadLines))
        {
            string[] parts = line.Split(' ');
            var entry = (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
            (parts[0] == "read" ? reads : commits).Add(entry);
        }

        Assert.NotEmpty(reads);
        Assert.NotEmpty(commits);
        commits.Sort((x, y) => x.At.CompareTo(y.At));
        foreach ((long version, long at) in reads)
        {
            long newestBefore = commits.TakeWhile(c => c.At < at).Select(c => c.Version).DefaultIfEmpty(0).Max();
            Assert.True(version >= newestBefore, $"a scope read version {version} after version {newestBefore} was committed");
        }
    }

    private static async Task<int> RunWorkerAsync(string mode, string db, int loops, string? log)
    {
        string worker = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "Database.Tests.Worker", "bin",
            Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!,
            "net10.0", "SharedEntities.Database.Tests.Worker.dll");
        Assert.True(File.Exists(worker), $"worker not built: {worker}");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { worker, mode, db, loops.ToString(CultureInfo.InvariantCulture), "60", log ?? "-" })
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        Assert.True(process.ExitCode == 0, $"worker {mode} failed: {await stderr}");
        return int.Parse((await stdout).Trim(), CultureInfo.InvariantCulture);
    }

    private static long CounterValue(string db)
    {
        using var connection = new SqliteConnection($"Data Source={db}");
        connection.Open();
        using SqliteCommand read = connection.CreateCommand();
        read.CommandText = "SELECT \"Value\" FROM \"Counter\" WHERE \"Id\" = 1";
        return (long)read.ExecuteScalar()!;
    }

    private static void SetCounter(string db, long value)
    {
        using var connection = new SqliteConnection($"Data Source={db}");
        connection.Open();
        using SqliteCommand write = connection.CreateCommand();
        write.CommandText = "UPDATE \"Counter\" SET \"Value\" = $v WHERE \"Id\" = 1";
        write.Parameters.AddWithValue("$v", value);
        write.ExecuteNonQuery();
    }
}
