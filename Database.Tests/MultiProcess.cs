using System.Diagnostics;
using System.Globalization;

namespace SharedEntities.Database.Tests;

/// <summary>What one worker process reported: its commits, conflicts and refused commits (store unavailable).</summary>
internal sealed record WorkerResult(int ExitCode, int Commits, int Conflicts, int Unavailable, string Errors);

/// <summary>Launches Database.Tests.Worker processes and checks their logs.</summary>
internal static class MultiProcess
{
    /// <summary>How long a worker may run (its own bound) and how long the test waits for it (kills it after).</summary>
    public const int WorkerSeconds = 120;

    private static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(WorkerSeconds + 60);

    public static async Task<WorkerResult> RunAsync(string mode, string database, string store, int loops, string? log, IReadOnlyDictionary<string, string>? environment = null)
    {
        string worker = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "Database.Tests.Worker", "bin",
            Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!,
            "net10.0", "SharedEntities.Database.Tests.Worker.dll");
        Assert.True(File.Exists(worker), $"worker not built: {worker}");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { worker, mode, database, store, loops.ToString(CultureInfo.InvariantCulture), WorkerSeconds.ToString(CultureInfo.InvariantCulture), log ?? "-" })
        {
            info.ArgumentList.Add(arg);
        }

        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(WaitLimit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true); // the worker this test started, by its pid
            throw;
        }

        string[] counts = (await stdout).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int Count(int i) => counts.Length == 3 ? int.Parse(counts[i], CultureInfo.InvariantCulture) : 0;
        return new WorkerResult(process.ExitCode, Count(0), Count(1), Count(2), await stderr);
    }

    /// <summary>The commits a worker logged (a killed worker logs the commit it died after, too).</summary>
    public static int LoggedCommits(string log) => File.ReadLines(log).Count(l => l.StartsWith("commit ", StringComparison.Ordinal));

    /// <summary>
    /// No scope accepted a version older than one whose commit had finished before the scope's check began: reads
    /// are logged with the time before their check, commits with the time after they returned.
    /// </summary>
    public static void AssertNoStaleRead(IEnumerable<string> logs)
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
        string? violation = FirstStaleRead(reads, commits);
        Assert.True(violation is null, violation);
    }

    /// <summary>The first read older than a commit finished before it, or <see langword="null"/>.</summary>
    public static string? FirstStaleRead(List<(long Version, long At)> reads, List<(long Version, long At)> commits)
    {
        commits.Sort((x, y) => x.At.CompareTo(y.At));
        foreach ((long version, long at) in reads)
        {
            long newestBefore = commits.TakeWhile(c => c.At < at).Select(c => c.Version).DefaultIfEmpty(0).Max();
            if (version < newestBefore)
            {
                return $"a scope read version {version} after version {newestBefore} was committed";
            }
        }

        return null;
    }
}
