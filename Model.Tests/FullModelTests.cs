namespace SharedEntities.Model.Tests;

/// <summary>
/// The whole model, every rule in, searched exhaustively within its bounds (docs/model/README.md): spin must find no
/// stale read accepted, no lost update and no deadlock, and must have searched a state space of a real size.
/// </summary>
public sealed class FullModelTests(ITestOutputHelper output)
{
    // The bounded model has about 9 million states (server writers) and 6 million (embedded store); a model that
    // collapsed (a guard that never opens, a process that cannot start) would have far fewer.
    private const long StateFloor = 1_000_000;

    public static TheoryData<string, string[]> WriterPaths => new()
    {
        { "memcached: ADO.NET and EF Core writers", [] },
        { "SQLite store in the writer's transaction", ["-DWRITER_PATH=EMBEDDED"] },
    };

    [Theory]
    [MemberData(nameof(WriterPaths))]
    public void No_counterexample(string paths, string[] defines)
    {
        output.WriteLine(paths);
        using var check = ModelCheck.Compile(output, defines, collapse: true);
        PanResult result = check.Verify(TimeSpan.FromMinutes(4));
        Assertions.ShowsNoCounterexample(output, check, result, StateFloor);
    }
}
