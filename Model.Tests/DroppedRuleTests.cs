namespace SharedEntities.Model.Tests;

/// <summary>
/// Each rule of the protocol, dropped from the model (<c>-DDROP_rule</c>), must let spin find a stale read accepted
/// or a lost update: a rule whose removal goes unnoticed would mean the model no longer checks what that rule is for.
/// </summary>
public sealed class DroppedRuleTests(ITestOutputHelper output)
{
    public static TheoryData<string> Rules => new()
    {
        "RAISE_UNDER_LOCK",
        "LOCKING_FILL",
        "PUBLISH_ONLY_OWN_DIRTY",
        "MISS_NOT_FRESH",
        "TOKENS_ONLY_RISE",
        "COMMIT_NEEDS_DIRTY",
        "FRESH_VERSIONS",
        "REPAIR_JUMPS",

        // DIRTY_ASKS_DATABASE and REFUSE_STORE_AHEAD are not here: they give no counterexample while a key's
        // versions never repeat (docs/model/README.md, "Two rules the model cannot show").
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Dropping_the_rule_gives_a_counterexample(string rule)
    {
        using var check = ModelCheck.Compile(output, [$"-DDROP_{rule}"], optimization: "-O1");
        PanResult result = check.Verify(TimeSpan.FromMinutes(2), ignoreEndStates: true);
        Assertions.ShowsViolation(output, check, result, $"without {rule}");
    }
}
