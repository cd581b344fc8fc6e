namespace SharedEntities.Model.Tests;

/// <summary>
/// The database going back to an earlier row (a restore from backup, a failover to a lagging replica) while
/// processes keep their copies (docs/model/README.md, "A restore of the database"). The forged store token is left
/// out of these runs (it is checked in the full model) to keep them small.
/// </summary>
public sealed class RestoreTests(ITestOutputHelper output)
{
    private static readonly string[] Restore = ["-DRESTORE", "-DNO_FORGE"];
    private static readonly string[] Fenced = [.. Restore, "-DRESTORE_FENCED"];

    /// <summary>
    /// The store keeps its tokens: a process holding the copy of a commit the restore lost is told clean(its version)
    /// by the store and accepts it, without any database read that could notice. The protocol alone cannot prevent
    /// this; the test keeps that known (if it ever passes, the model changed).
    /// </summary>
    [Fact]
    public void Keeping_the_store_as_it_is_lets_a_lost_commit_be_read()
    {
        using var check = ModelCheck.Compile(output, [.. Restore, "-DMAXLOSS=0"], optimization: "-O1");
        PanResult result = check.Verify(TimeSpan.FromMinutes(2), ignoreEndStates: true);
        Assertions.ShowsViolation(output, check, result, "with a restore that keeps the store");
    }

    /// <summary>With the restore procedure (versions jump above all used, then the store is emptied) nothing goes wrong.</summary>
    [Fact]
    public void The_fenced_restore_has_no_counterexample()
    {
        using var check = ModelCheck.Compile(output, Fenced, collapse: true);
        PanResult result = check.Verify(TimeSpan.FromMinutes(3));
        Assertions.ShowsNoCounterexample(output, check, result, stateFloor: 500_000);
    }

    /// <summary>Each half of the restore procedure is needed.</summary>
    [Theory]
    [InlineData("RESTORE_JUMP")]
    [InlineData("RESTORE_FLUSH")]
    public void Dropping_half_of_the_fence_gives_a_counterexample(string rule)
    {
        using var check = ModelCheck.Compile(output, [.. Fenced, $"-DDROP_{rule}"], optimization: "-O1");
        PanResult result = check.Verify(TimeSpan.FromMinutes(2), ignoreEndStates: true);
        Assertions.ShowsViolation(output, check, result, $"without {rule}");
    }
}
