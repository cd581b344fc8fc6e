namespace SharedEntities.Model.Tests;

/// <summary>
/// The model with the process-wide entity cache (<c>-DCACHE</c>; docs/model/README.md, "The entity cache"): a cell per
/// process that its reads by key serve from when the store vouches for the cell's version, and that loads and ordinary
/// queries fill. With every rule in, spin must find no stale read accepted and no lost update; each cache rule dropped
/// must give a counterexample.
/// </summary>
public sealed class CacheModelTests(ITestOutputHelper output)
{
    // The cache model has about 22 million states in either layout; without the cache it has 9 million, so a floor
    // above that shows the cache's steps were explored.
    private const long StateFloor = 12_000_000;

    public static TheoryData<string, string[]> Layouts => new()
    {
        { "a cell per reader process (R0 with W1, R1 with W2)", ["-DCACHE"] },
        { "R0 and R1 concurrent flows of one process, sharing its cell (with W1)", ["-DCACHE", "-DCACHE_SHARED"] },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void The_cache_has_no_counterexample(string layout, string[] defines)
    {
        output.WriteLine(layout);
        using var check = ModelCheck.Compile(output, defines, collapse: true);
        PanResult result = check.Verify(TimeSpan.FromMinutes(6));
        Assertions.ShowsNoCounterexample(output, check, result, StateFloor);
    }

    public static TheoryData<string> Rules => new()
    {
        "CACHE_EXACT_VERSION",     // only a clean token of exactly the cell's version serves it
        "CACHE_LOCKED_FILL",       // a won lease serves the cell only after the locking read finds its version
        "CACHE_COMMITTED_ONLY",    // the cell is filled from committed reads only, never from a write
    };

    /// <summary>
    /// Without a forged token (a hostile store is not needed for any of these): each counterexample is then the
    /// protocol's own (README, "Each cache rule, dropped").
    /// </summary>
    [Theory]
    [MemberData(nameof(Rules))]
    public void Dropping_a_cache_rule_gives_a_counterexample(string rule)
    {
        using var check = ModelCheck.Compile(output, ["-DCACHE", "-DNO_FORGE", $"-DDROP_{rule}"], optimization: "-O1");
        PanResult result = check.Verify(TimeSpan.FromMinutes(2), ignoreEndStates: true);
        Assertions.ShowsViolation(output, check, result, $"without {rule}");
    }
}
