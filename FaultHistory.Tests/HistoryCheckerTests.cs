using SharedEntities.Protocol;

namespace SharedEntities.FaultHistory.Tests;

/// <summary>The checker on hand-made histories: it must fail on a lost update and on a stale read, and only then.</summary>
public sealed class HistoryCheckerTests
{
    // One tick per second keeps the times readable.
    private const long Frequency = 1;

    private static readonly CounterRow[] Initial = [new(1, 1, 0), new(2, 1, 0)];

    [Fact]
    public void A_clean_history_passes()
    {
        HistoryReport report = Check(
            [
                Read(10, 1, 1, 0), Commit(20, 1, 2, 1), Read(30, 1, 2, 1), Commit(40, 1, 3, 2),
            ],
            [
                Read(15, 1, 1, 0), Conflict(25, 1), Read(45, 1, 3, 2), Read(5, 2, 1, 0),
            ],
            final: [new(1, 3, 2), new(2, 1, 0)]);

        Assert.True(report.Clean, report.ToString());
        Assert.Equal((5, 2, 1), (report.Reads, report.Commits, report.Conflicts));
    }

    [Fact]
    public void A_version_committed_twice_is_a_lost_update()
    {
        // Both processes read version 1 and both "committed" version 2: one increment is gone.
        HistoryReport report = Check([Read(10, 1, 1, 0), Commit(20, 1, 2, 1)], [Read(11, 1, 1, 0), Commit(21, 1, 2, 1)], final: [new(1, 2, 1), new(2, 1, 0)]);

        Assert.Equal(1, report.LostUpdates.Count);
        Assert.Contains("version 2 was committed 2 times", report.LostUpdates.Listed[0], StringComparison.Ordinal);
        Assert.Equal(0, report.StaleReads.Count);
    }

    [Fact]
    public void A_commit_off_the_counter_chain_is_a_lost_update()
    {
        // Version 3 holds 1: it was computed from version 1's value, and version 2's increment is gone.
        HistoryReport report = Check([Commit(20, 1, 2, 1)], [Commit(30, 1, 3, 1)], final: [new(1, 3, 1), new(2, 1, 0)]);

        Assert.Equal(1, report.LostUpdates.Count);
        Assert.Contains("p1 (line 1) holds value 1 at version 3, after p0 (line 1) had 1 at version 2: an increment was lost or counted twice",
            report.LostUpdates.Listed[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Versions_may_jump_without_a_commit_but_values_may_not()
    {
        // A repair moved counter 1 from version 2 to 9 (the store was ahead): the next commit is at 10, one more.
        HistoryReport repaired = Check(
            [Read(10, 1, 1, 0), Commit(20, 1, 2, 1), Read(25, 1, 9, 1)], [Read(26, 1, 9, 1), Commit(30, 1, 10, 2)], final: [new(1, 11, 2), new(2, 1, 0)]);
        Assert.True(repaired.Clean, repaired.ToString());

        HistoryReport skipped = Check([Commit(20, 1, 2, 1)], [Commit(30, 1, 10, 3)], final: [new(1, 10, 3), new(2, 1, 0)]);
        Assert.Contains(skipped.LostUpdates.Listed, v => v.Contains("no process logged the increment(s) to 2", StringComparison.Ordinal));
    }

    [Fact]
    public void The_final_row_must_be_the_last_commit_and_every_increment_logged()
    {
        HistoryReport behind = Check([Commit(20, 1, 2, 1), Commit(30, 1, 3, 2)], [], final: [new(1, 2, 1), new(2, 1, 0)]);
        Assert.Contains(behind.LostUpdates.Listed, v => v.Contains("the final row is at version 2, not above p0 (line 2)'s version 3", StringComparison.Ordinal));

        HistoryReport lower = Check([Commit(20, 1, 2, 1), Commit(30, 1, 3, 2)], [], final: [new(1, 4, 1), new(2, 1, 0)]);
        Assert.Contains(lower.LostUpdates.Listed, v => v.Contains("a committed increment is missing from the database", StringComparison.Ordinal));

        HistoryReport unlogged = Check([Commit(20, 1, 2, 1)], [], final: [new(1, 4, 3), new(2, 1, 0)]);
        Assert.Contains(unlogged.LostUpdates.Listed, v => v.Contains("no process logged the increment(s) to 2, 3", StringComparison.Ordinal));

        // A commit whose connection broke may have happened: it accounts for its increment.
        HistoryReport indeterminate = Check([Read(10, 1, 1, 0), Commit(20, 1, 2, 1), Read(25, 1, 2, 1), Maybe(30, 1, 3, 2)], [], final: [new(1, 3, 2), new(2, 1, 0)]);
        Assert.True(indeterminate.Clean, indeterminate.ToString());
        Assert.Equal(1, indeterminate.Maybes);
    }

    [Fact]
    public void A_read_of_an_older_version_after_a_newer_commit_finished_is_stale()
    {
        HistoryReport report = Check(
            [Commit(100, 1, 2, 1)],
            [Fault(90, 1, "evict-after-raise:ok"), Read(200, 1, 1, 0)],
            final: [new(1, 2, 1), new(2, 1, 0)]);

        Assert.Equal(1, report.StaleReads.Count);
        string violation = report.StaleReads.Listed[0];
        Assert.Contains("STALE READ counter 1: p1 (line 2) accepted version 1 (value 0)", violation, StringComparison.Ordinal);
        Assert.Contains("after p0 (line 1) had committed version 2", violation, StringComparison.Ordinal);
        Assert.Contains("last faults before it: evict-after-raise:ok by p1", violation, StringComparison.Ordinal);
        Assert.Equal(0, report.LostUpdates.Count);
    }

    [Fact]
    public void Only_commits_finished_before_the_check_began_and_of_the_same_counter_count()
    {
        HistoryReport report = Check(
            [Read(50, 1, 1, 0), Read(50, 2, 1, 0, flow: 1), Commit(100, 1, 2, 1), Commit(100, 2, 2, 1, flow: 1)],
            [Read(90, 1, 1, 0), Read(100, 1, 1, 0), Read(150, 2, 2, 1), Read(150, 1, 2, 1)],
            final: [new(1, 2, 1), new(2, 2, 1)]);

        // Version 1 read at 90 and at 100: its check began before version 2's commit returned, so it may be older.
        Assert.True(report.Clean, report.ToString());
    }

    [Fact]
    public void A_read_value_that_its_version_never_held_is_invalid()
    {
        HistoryReport report = Check([Commit(20, 1, 2, 1)], [Read(30, 1, 2, 5), Read(31, 1, 4, 1)], final: [new(1, 2, 1), new(2, 1, 0)]);

        Assert.Equal(1, report.InvalidReads.Count); // version 4 (a repair, say) holds version 2's value
        Assert.Contains("accepted version 2 with value 5; that version holds 1", report.InvalidReads.Listed[0], StringComparison.Ordinal);
        Assert.False(report.Clean);
    }

    [Fact]
    public void A_refused_write_committed_by_a_later_save_is_a_ghost_write()
    {
        HistoryReport report = Check(
            [Read(10, 2, 1, 0), Conflict(20, 2), Read(30, 1, 1, 0), Commit(40, 1, 2, 1), new HistoryEvent(EventKind.Commit, 40, 2, 2, 1, "bystander-of-1")],
            [],
            final: [new(1, 2, 1), new(2, 2, 1)]);

        Assert.Equal(0, report.LostUpdates.Count); // the version guard held: the chain is whole
        Assert.Equal(1, report.GhostWrites.Count);
        Assert.Contains("GHOST WRITE counter 2: p0 (line 5) committed version 2 (value 1) in a save of counter 1", report.GhostWrites.Listed[0], StringComparison.Ordinal);
        Assert.False(report.Clean);
    }

    [Fact]
    public void Concurrent_flows_of_one_process_are_told_apart()
    {
        // Two flows of p0 interleave their lines; flow 2 reads version 1 after flow 1's commit of version 2 returned.
        HistoryReport report = Check(
            [
                Read(10, 1, 1, 0, flow: 1), Read(11, 1, 1, 0, flow: 2), Commit(20, 1, 2, 1, flow: 1), Conflict(21, 1, flow: 2),
                Read(30, 1, 1, 0, flow: 2), Read(31, 2, 1, 0, flow: 1),
            ],
            [Read(25, 1, 2, 1)],
            final: [new(1, 2, 1), new(2, 1, 0)]);

        Assert.Equal(0, report.Misattributed.Count);
        Assert.Equal(0, report.LostUpdates.Count);
        Assert.Equal(1, report.StaleReads.Count);
        Assert.Contains("p0/2 (line 5) accepted version 1 (value 0)", report.StaleReads.Listed[0], StringComparison.Ordinal);
        Assert.Contains("after p0/1 (line 3) had committed version 2", report.StaleReads.Listed[0], StringComparison.Ordinal);
    }

    [Fact]
    public void A_commit_its_own_flow_did_not_read_for_is_misattributed()
    {
        // Flow 1 read counter 1 and flow 2 counter 2; the commit of counter 1 is logged under flow 2.
        HistoryReport swapped = Check(
            [Read(10, 1, 1, 0, flow: 1), Read(11, 2, 1, 0, flow: 2), Commit(20, 1, 2, 1, flow: 2)],
            [],
            final: [new(1, 2, 1), new(2, 1, 0)]);
        Assert.Equal(0, swapped.LostUpdates.Count); // the chain alone cannot tell
        Assert.Equal(1, swapped.Misattributed.Count);
        Assert.Contains("MISATTRIBUTED WRITE counter 1: p0/2 (line 3) committed version 2 (value 1), but its last read (p0/2 (line 2)) was of counter 2",
            swapped.Misattributed.Listed[0], StringComparison.Ordinal);
        Assert.False(swapped.Clean);

        // A commit of a value its flow's read does not lead to, and a commit with no read at all.
        HistoryReport unread = Check([Read(10, 1, 1, 0, flow: 1), Commit(20, 1, 2, 5, flow: 1)], [Commit(30, 2, 2, 1)], final: [new(1, 2, 5), new(2, 2, 1)]);
        Assert.Equal(2, unread.Misattributed.Count);
        Assert.Contains(unread.Misattributed.Listed, v => v.Contains("p1 (line 1) committed version 2 (value 1), but it read nothing before", StringComparison.Ordinal));

        // Bystander commits are the save's, not a read's.
        HistoryReport bystander = Check(
            [Read(10, 2, 1, 0), Conflict(15, 2), Read(16, 1, 1, 0), Commit(20, 1, 2, 1), new HistoryEvent(EventKind.Commit, 20, 2, 2, 1, "bystander-of-1")],
            [],
            final: [new(1, 2, 1), new(2, 2, 1)]);
        Assert.Equal(0, bystander.Misattributed.Count);
        Assert.Equal(1, bystander.GhostWrites.Count);
    }

    [Fact]
    public void Faults_are_counted_by_kind_when_they_took_effect()
    {
        HistoryReport report = Check(
            [Fault(1, 1, "evict-after-raise:ok"), Fault(2, 1, "evict-after-raise:failed"), Fault(3, 1, "evict-after-raise:deferred"), Fault(4, 0, "kill-before-publish")],
            [],
            final: Initial);

        Assert.Equal(2, report.Faults["evict-after-raise"]);
        Assert.Equal(1, report.Faults["kill-before-publish"]);
    }

    [Fact]
    public void History_lines_round_trip_and_a_truncated_last_line_is_dropped()
    {
        var entry = new HistoryEvent(EventKind.Commit, 123456789, 2, 7, 6, Flow: 3);
        Assert.Equal("commit 123456789 3 2 7 6 -", entry.ToString());
        Assert.Equal(entry, HistoryEvent.Parse(entry.ToString()));
        Assert.Equal("a_b", HistoryEvent.Parse(new HistoryEvent(EventKind.Error, 1, Detail: "a b").ToString())?.Detail);
        Assert.Null(HistoryEvent.Parse("commit 123456789 3 2 7"));
        Assert.Null(HistoryEvent.Parse("commit 123456789 2 7 6 -")); // a line without its flow
    }

    [Fact]
    public void The_faults_token_encoding_is_the_runtimes()
    {
        foreach (long version in new long[] { 0, 1, 2, 41, 1L << 40 })
        {
            Assert.Equal(SharedToken.Clean(version).Value, TokenEncoding.Clean(version));
        }
    }

    private static HistoryReport Check(HistoryEvent[] p0, HistoryEvent[] p1, CounterRow[] final) =>
        HistoryChecker.Check([new ProcessHistory("p0", p0), new ProcessHistory("p1", p1)], Initial, final, Frequency);

    private static HistoryEvent Read(long at, int key, long version, long value, int flow = 0) => new(EventKind.Read, at, key, version, value, Flow: flow);

    private static HistoryEvent Commit(long at, int key, long version, long value, int flow = 0) => new(EventKind.Commit, at, key, version, value, Flow: flow);

    private static HistoryEvent Maybe(long at, int key, long version, long value) => new(EventKind.Maybe, at, key, version, value);

    private static HistoryEvent Conflict(long at, int key, int flow = 0) => new(EventKind.Conflict, at, key, Flow: flow);

    private static HistoryEvent Fault(long at, int key, string detail) => new(EventKind.Fault, at, key, Detail: detail);
}
