namespace SharedEntities.Model.Tests;

internal static class Assertions
{
    /// <summary>
    /// Asserts that spin found no error in a search that was complete and explored more than
    /// <paramref name="stateFloor"/> states (a model that collapsed would explore far fewer). Prints the trail if not.
    /// </summary>
    public static void ShowsNoCounterexample(ITestOutputHelper output, ModelCheck check, PanResult result, long stateFloor)
    {
        if (result.Errors != 0)
        {
            output.WriteLine(check.Replay());
        }

        Assert.True(result.Errors == 0, $"spin found a counterexample: {result.Violation} (trail in the test output)");
        Assert.True(result.Complete, $"the search was cut short:\n{result.Output}");
        Assert.True(result.StatesStored > stateFloor, $"only {result.StatesStored} states: the model no longer explores what it should");
    }

    /// <summary>Asserts that spin found one of the model's own assertions violated, and prints the trail.</summary>
    public static void ShowsViolation(ITestOutputHelper output, ModelCheck check, PanResult result, string what)
    {
        Assert.True(result.Errors >= 1, $"{what}, spin found no counterexample ({result.StatesStored} states)");
        Assert.NotNull(result.Violation);
        Assert.StartsWith("assertion violated", result.Violation, StringComparison.Ordinal);
        output.WriteLine(check.Replay());
    }
}
