using SharedEntities.Memcached.Tests;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Samples.Tests;

public sealed class SampleTests
{
    [Fact]
    public void The_default_run_keeps_every_guarantee_with_no_server()
    {
        SampleRun run = SampleRun.Start();
        AssertGuaranteesHeld(run, processes: 4);
        Assert.Contains("the embedded store", run.Output, StringComparison.Ordinal);
        Assert.Contains("EntityDeletedException", run.Output, StringComparison.Ordinal);
        Assert.Contains("StaleEntityException", run.Output, StringComparison.Ordinal);
        Assert.Contains("StaleSnapshotException", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_seed_protocol_loses_updates_and_the_sample_says_so()
    {
        // A test aid: the counter writes back without the version guard, as the seed did.
        SampleRun run = SampleRun.Start("--break-guarantee", "--processes", "4", "--loops", "150");
        Assert.Equal(1, run.ExitCode);
        Assert.True(run.Summary["lost_updates"] > 0, run.ToString());
        Assert.Contains("LOST UPDATES", run.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--bogus" }, "Unknown argument '--bogus'")]
    [InlineData(new[] { "--processes", "1" }, "--processes must be a whole number from 2 to 16")]
    [InlineData(new[] { "--loops", "many" }, "--loops must be a whole number")]
    [InlineData(new[] { "--memcached" }, "--memcached needs a value")]
    [InlineData(new[] { "--memcached", "cache:11211,cache:11211" }, "listed twice")]
    public void Bad_arguments_are_refused_with_exit_code_2_before_anything_runs(string[] arguments, string message)
    {
        SampleRun run = SampleRun.Start(arguments);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.Errors, StringComparison.Ordinal);
        Assert.Empty(run.Output); // nothing was created, nothing was played
    }

    [Fact]
    public void Help_lists_the_options()
    {
        SampleRun run = SampleRun.Start("--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--memcached host:port", run.Output, StringComparison.Ordinal);
        Assert.Contains("--memcached-ca FILE", run.Output, StringComparison.Ordinal);
        Assert.Contains(SharedSheets.SampleOptions.MemcachedPasswordVariable, run.Output, StringComparison.Ordinal);
        Assert.Contains("--postgres", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("--break-guarantee", run.Output, StringComparison.Ordinal);
    }

    internal static void AssertGuaranteesHeld(SampleRun run, int processes)
    {
        Assert.True(run.ExitCode == 0, run.ToString());
        IReadOnlyDictionary<string, int> summary = run.Summary;
        Assert.Equal(processes, summary["processes"]);
        Assert.Equal(0, summary["lost_updates"]);
        Assert.Equal(0, summary["stale_accepted"]);
        Assert.True(summary["commits"] > 0, run.ToString());
        Assert.True(summary["recalcs_aborted"] >= 1, run.ToString());
        Assert.True(summary["deletes_noticed"] >= 1, run.ToString());
        Assert.True(summary["served_from_cache"] > 0, run.ToString()); // requests read by key from the entity cache
    }
}

public sealed class SampleOnMemcachedTests : IClassFixture<MemcachedServer>
{
    private readonly MemcachedServer _memcached;

    public SampleOnMemcachedTests(MemcachedServer memcached) => _memcached = memcached;

    [Fact]
    public void The_run_on_memcached_keeps_every_guarantee()
    {
        SampleRun run = SampleRun.Start("--memcached", _memcached.Address, "--processes", "3");
        SampleTests.AssertGuaranteesHeld(run, processes: 3);
        Assert.Contains($"memcached at {_memcached.Address}", run.Output, StringComparison.Ordinal);
        Assert.True(_memcached.Stat("cmd_get") > 0, "the sample never asked memcached");
    }
}

/// <summary>The sample against a memcached that requires TLS and authentication, started by the test.</summary>
public sealed class SampleOnSecureMemcachedTests(SecureMemcached memcached) : IClassFixture<SecureMemcached>
{
    [Fact]
    public void The_run_over_tls_with_authentication_keeps_every_guarantee()
    {
        var environment = new Dictionary<string, string> { [SharedSheets.SampleOptions.MemcachedPasswordVariable] = memcached.Material.Password };
        SampleRun run = SampleRun.Start(
            environment,
            "--memcached", memcached.Server.Address, "--memcached-ca", memcached.Material.CertificateFile, "--memcached-user", TlsMaterial.Username, "--processes", "3");
        SampleTests.AssertGuaranteesHeld(run, processes: 3);
        Assert.Contains($"memcached at {memcached.Server.Address} (TLS, authenticated)", run.Output, StringComparison.Ordinal);
        Assert.True(memcached.Stat("cmd_get") > 0, "the sample never asked memcached");
        Assert.DoesNotContain(memcached.Material.Password, run.Output + run.Errors, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--memcached-tls" }, "need --memcached")]
    [InlineData(new[] { "--memcached", "127.0.0.1:1", "--memcached-ca", "/nonexistent/ca.pem" }, "--memcached-ca: no file")]
    [InlineData(new[] { "--memcached", "127.0.0.1:1", "--memcached-user", "with space" }, "Username must be")]
    public void Bad_security_arguments_are_refused_with_exit_code_2(string[] arguments, string message)
    {
        var environment = new Dictionary<string, string> { [SharedSheets.SampleOptions.MemcachedPasswordVariable] = "pw" };
        SampleRun run = SampleRun.Start(environment, arguments);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(message, run.Errors, StringComparison.Ordinal);
    }
}

[Collection(PostgresFixture.Name)]
public sealed class SampleOnPostgresTests(PostgresCluster postgres)
{
    [Fact]
    public void The_run_on_postgres_and_memcached_keeps_every_guarantee()
    {
        using var memcached = new MemcachedServer();
        SampleRun run = SampleRun.Start("--postgres", postgres.ConnectionString, "--memcached", memcached.Address);
        SampleTests.AssertGuaranteesHeld(run, processes: 4);
        Assert.Contains("PostgreSQL for the sheets", run.Output, StringComparison.Ordinal);
        Assert.Contains("REPEATABLE READ", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_run_on_postgres_with_the_embedded_store_keeps_every_guarantee()
    {
        SampleRun run = SampleRun.Start("--postgres", postgres.ConnectionString, "--processes", "2");
        SampleTests.AssertGuaranteesHeld(run, processes: 2);
        Assert.Contains("the embedded store (a SQLite file)", run.Output, StringComparison.Ordinal);
    }
}
