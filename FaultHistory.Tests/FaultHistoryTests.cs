using SharedEntities.Tests.Postgres;
using Xunit.Abstractions;

[assembly: CollectionBehavior(DisableTestParallelization = true)] // each run needs the machine's cores to itself

namespace SharedEntities.FaultHistory.Tests;

/// <summary>The runs on production's setup: PostgreSQL and memcached, one case per write path.</summary>
[Collection(PostgresFixture.Name)]
public sealed class PostgresMemcachedFaultHistoryTests(PostgresCluster cluster, ITestOutputHelper output)
{
    [Theory]
    [InlineData(WritePaths.AdoNet)]
    [InlineData(WritePaths.EfAutocommit)]
    [InlineData(WritePaths.EfTransaction)]
    public Task No_lost_update_and_no_stale_read_under_faults(string path) =>
        FaultHistoryCase.RunAsync(folder => new PostgresMemcachedSetup(cluster), path, output);
}

/// <summary>The runs on the embedded default: one SQLite file with the store's token table, one case per write path.</summary>
public sealed class SqliteEmbeddedFaultHistoryTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(WritePaths.AdoNet)]
    [InlineData(WritePaths.EfAutocommit)]
    [InlineData(WritePaths.EfTransaction)]
    public Task No_lost_update_and_no_stale_read_under_faults(string path) =>
        FaultHistoryCase.RunAsync(folder => new SqliteEmbeddedSetup(folder), path, output);
}

/// <summary>One case: a run, its report in the test output, and what it must show.</summary>
internal static class FaultHistoryCase
{
    public static async Task RunAsync(Func<string, IRunSetup> createSetup, string path, ITestOutputHelper output)
    {
        string folder = Path.Combine(Path.GetTempPath(), "se-fault-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        RunPlan plan = RunPlan.For(path);
        RunResult result;
        using (IRunSetup setup = createSetup(folder))
        {
            result = await FaultRun.RunAsync(setup, plan, folder);
            output.WriteLine(result.Summary);

            // The promises first: these are what the run is for.
            HistoryReport report = result.Report;
            Assert.True(report.Clean, "The library's promises were broken:\n" + result.Summary);
            Assert.True(result.Problems.Count == 0, "Worker processes failed:\n" + result.Summary);

            // Then the scale: a run that did almost nothing, or missed a fault, proves nothing.
            Assert.True(report.Reads >= plan.MinReads && report.Commits >= plan.MinCommits,
                $"The run was too small (at least {plan.MinReads} reads and {plan.MinCommits} commits expected):\n{result.Summary}");
            Assert.True(report.Conflicts > 0, "No write conflict: the workers did not contend.\n" + result.Summary);
            List<string> missing = [.. setup.ExternalFaults.Concat(FaultKinds.Internal).Where(kind => report.Faults.GetValueOrDefault(kind) == 0)];
            Assert.True(missing.Count == 0, $"No {string.Join(", ", missing)} fault took effect:\n{result.Summary}");
        }

        if (Environment.GetEnvironmentVariable("SHAREDENTITIES_FAULT_KEEP") is not "1")
        {
            Directory.Delete(folder, recursive: true); // a failed case keeps its logs (the summary says where)
        }
    }
}
