namespace SharedEntities.Model.Tests;

/// <summary>
/// What a client of the same store that is not the library can do (docs/model/README.md, "Values the library did not
/// write"; docs/protocol.md, "Security"). Each run keeps the other kinds of forgery out to stay small.
/// </summary>
public sealed class HostileStoreTests(ITestOutputHelper output)
{
    public static TheoryData<string, string[]> HarmlessWrites => new()
    {
        { "a damaged value (garbage, out of range), server writers", ["-DDAMAGE", "-DNO_FORGE"] },
        { "a damaged value, embedded store", ["-DDAMAGE", "-DNO_FORGE", "-DWRITER_PATH=EMBEDDED"] },
        { "a forged high dirty token", ["-DFORGED=DIRTY"] },
        { "a forged high deleted token", ["-DFORGED=DELETED"] },
    };

    /// <summary>
    /// A value that is no token is treated as a miss (replaced by CAS after a locking read, raised over by writers),
    /// and a forged high token of any state only sends readers to the database: neither makes a stale read accepted.
    /// </summary>
    [Theory]
    [MemberData(nameof(HarmlessWrites))]
    public void No_counterexample(string what, string[] defines)
    {
        output.WriteLine(what);
        using var check = ModelCheck.Compile(output, defines, collapse: true);
        PanResult result = check.Verify(TimeSpan.FromMinutes(3));
        Assertions.ShowsNoCounterexample(output, check, result, stateFloor: 1_000_000);
    }

    /// <summary>
    /// An old clean token put back (a replay of a value the client saw earlier) makes a process with that old copy
    /// accept it without asking the database. No rule of the protocol can tell a replayed token from a current one,
    /// which is why the store is inside the trust boundary; the test keeps that known.
    /// </summary>
    [Fact]
    public void A_replayed_old_token_lets_a_stale_copy_be_accepted()
    {
        using var check = ModelCheck.Compile(output, ["-DREPLAY", "-DNO_FORGE", "-DMAXLOSS=0"], optimization: "-O1");
        PanResult result = check.Verify(TimeSpan.FromMinutes(2), ignoreEndStates: true);
        Assertions.ShowsViolation(output, check, result, "with an old token put back");
    }
}
