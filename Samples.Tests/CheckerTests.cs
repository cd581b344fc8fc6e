using SharedSheets;

namespace SharedEntities.Samples.Tests;

public sealed class CheckerTests
{
    [Fact]
    public void Reads_at_least_as_new_as_every_earlier_commit_pass()
    {
        CheckResult result = GuaranteeChecker.Check(["commit 2 100", "read 2 150", "commit 3 200", "read 2 190", "read 3 250"]);
        Assert.Equal(0, result.StaleAccepted);
        Assert.Equal(3, result.Reads);
        Assert.Equal(2, result.Commits);
    }

    [Fact]
    public void A_read_older_than_a_commit_finished_before_its_check_is_stale()
    {
        CheckResult result = GuaranteeChecker.Check(["commit 2 100", "commit 3 200", "read 2 250", "read 3 260"]);
        Assert.Equal(1, result.StaleAccepted);
        Assert.Contains("version 2", result.FirstViolation, StringComparison.Ordinal);
        Assert.Contains("version 3", result.FirstViolation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_commit_that_finished_after_the_check_began_does_not_count()
    {
        // The check began at 200; the commit of version 3 finished at 200, not before.
        Assert.Equal(0, GuaranteeChecker.Check(["commit 3 200", "read 2 200"]).StaleAccepted);
    }

    [Theory]
    [InlineData("read 2")]
    [InlineData("wrote 2 100")]
    [InlineData("read two 100")]
    public void A_malformed_log_line_is_an_error(string line)
    {
        var refused = Assert.Throws<InvalidDataException>(() => GuaranteeChecker.Check([line]));
        Assert.Contains(line, refused.Message, StringComparison.Ordinal);
    }
}
