using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace SharedEntities.FaultHistory.Tests;

/// <summary>The history of one process (or of the test's own fault injector): its name and its events in log order.</summary>
internal sealed record ProcessHistory(string Name, IReadOnlyList<HistoryEvent> Events)
{
    /// <summary>Reads a log file; a truncated last line (the process was killed while writing it) is dropped.</summary>
    public static ProcessHistory Load(string name, string file) =>
        new(name, [.. File.ReadLines(file).Select(HistoryEvent.Parse).OfType<HistoryEvent>()]);
}

/// <summary>A counter row of the database: before the run, or after it.</summary>
internal readonly record struct CounterRow(int Key, long Version, long Value);

/// <summary>Violations of one kind: how many, and the first ones in words.</summary>
internal sealed class Findings
{
    private const int MaxListed = 50;
    private readonly List<string> _listed = [];

    public int Count { get; private set; }

    public IReadOnlyList<string> Listed => _listed;

    public void Add(string violation)
    {
        if (Count++ < MaxListed)
        {
            _listed.Add(violation);
        }
    }
}

/// <summary>What <see cref="HistoryChecker"/> found.</summary>
internal sealed class HistoryReport
{
    public int Checks { get; init; }

    public int Reads { get; init; }

    public int Commits { get; init; }

    public int Maybes { get; init; }

    public int Conflicts { get; init; }

    public int Refused { get; init; }

    public int Errors { get; init; }

    /// <summary>Faults that took effect, by kind (<c>evict-after-raise</c>, <c>postgres-restart</c>, …).</summary>
    public required IReadOnlyDictionary<string, int> Faults { get; init; }

    /// <summary>Commits off the counter's chain, versions committed twice, a final row that is not the last commit.</summary>
    public required Findings LostUpdates { get; init; }

    /// <summary>Reads of a version older than one whose commit had finished before the read's check began.</summary>
    public required Findings StaleReads { get; init; }

    /// <summary>Reads of a value that no commit of that version wrote.</summary>
    public required Findings InvalidReads { get; init; }

    /// <summary>Writes the application was told were refused ("nothing was written") that a later save committed.</summary>
    public required Findings GhostWrites { get; init; }

    /// <summary>Commits that their flow's own last read does not explain: the history attributes a write to the wrong flow.</summary>
    public required Findings Misattributed { get; init; }

    public bool Clean => LostUpdates.Count == 0 && StaleReads.Count == 0 && InvalidReads.Count == 0 && GhostWrites.Count == 0 && Misattributed.Count == 0;

    /// <summary>Every violation listed, kind by kind.</summary>
    public IEnumerable<string> Violations =>
        LostUpdates.Listed.Concat(StaleReads.Listed).Concat(InvalidReads.Listed).Concat(GhostWrites.Listed).Concat(Misattributed.Listed);

    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"checks {Checks}, reads accepted {Reads}, commits {Commits} (+{Maybes} indeterminate), conflicts {Conflicts}, refused {Refused}, errors {Errors}\n");
        text.Append("faults: ").AppendJoin(", ", Faults.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key} {f.Value}")).Append('\n');
        text.Append(CultureInfo.InvariantCulture,
            $"lost updates: {LostUpdates.Count}, stale reads: {StaleReads.Count}, invalid reads: {InvalidReads.Count}, ghost writes: {GhostWrites.Count}, misattributed: {Misattributed.Count}\n");
        foreach (string violation in Violations.Take(12))
        {
            text.Append(violation).Append('\n');
        }

        return text.ToString();
    }
}

/// <summary>
/// Checks a multi-process history of counters (each write adds one) against the library's promises:
/// <list type="bullet">
/// <item><b>No lost update</b>: along each counter's versions every commit adds one to the value: the values committed
/// rise by exactly one from commit to commit, in version order (versions may jump without a commit: a repair of a row
/// that the store was ahead of moves its version only). No two commits write the same value. The final row holds the
/// last commit's value, and every increment up to it was logged by some process, as a commit, or as an indeterminate
/// commit when its connection broke.</item>
/// <item><b>No stale read accepted</b>: a read of version r whose check began after a commit of a version above r of
/// the same counter had finished is stale. Reads carry the time taken before their check, commits the time taken
/// after they returned, so only real-time order counts; indeterminate commits are not used here.</item>
/// <item>Every read's value is the one its version holds: that of the last commit at or below it.</item>
/// <item>No write refused in an earlier scope (the application caught <c>StaleEntityException</c>: nothing was
/// written) is committed later by another save: the workers log such writes as commits "bystander-of" the counter
/// they were saving.</item>
/// <item>Each commit is its own flow's: a process runs several flows concurrently and tags every line with its flow, so
/// the flow's last read before a commit must be of the same counter, at a lower version, with the value the commit
/// added one to (bystander commits excepted). A worker that logged a write under another flow, or values it did not
/// read, would make the other checks reason about the wrong reads.</item>
/// </list>
/// </summary>
internal static class HistoryChecker
{
    public static HistoryReport Check(
        IReadOnlyList<ProcessHistory> histories, IReadOnlyList<CounterRow> initial, IReadOnlyList<CounterRow> final, long frequency = 0)
    {
        frequency = frequency > 0 ? frequency : Stopwatch.Frequency;
        var all = histories.SelectMany(h => h.Events.Select((e, i) => new Located(e, h.Name, i + 1))).ToList();
        var misattributed = new Findings();
        CheckFlows(all, misattributed);
        long origin = all.Count == 0 ? 0 : all.Min(e => e.Event.At);
        string Seconds(long at) => ((at - origin) / (double)frequency).ToString("F6", CultureInfo.InvariantCulture) + " s";

        List<Located> faults = [.. all.Where(e => e.Event.Kind == EventKind.Fault).OrderBy(e => e.Event.At)];
        var lost = new Findings();
        var stale = new Findings();
        var invalid = new Findings();
        var ghosts = new Findings();
        foreach (CounterRow start in initial)
        {
            List<Located> of(EventKind kind) => [.. all.Where(e => e.Event.Kind == kind && e.Event.Key == start.Key)];
            List<Located> commits = of(EventKind.Commit), maybes = of(EventKind.Maybe), reads = of(EventKind.Read);
            CounterRow end = final.Single(r => r.Key == start.Key);
            CheckChain(start, end, commits, maybes, lost);
            foreach (Located ghost in commits.Where(c => c.Event.Detail.StartsWith("bystander-of-", StringComparison.Ordinal)))
            {
                ghosts.Add($"GHOST WRITE counter {start.Key}: {ghost.Where} committed version {ghost.Event.Version} (value {ghost.Event.Value}) " +
                    $"in a save of counter {ghost.Event.Detail["bystander-of-".Length..]}: a write refused in an earlier scope, which the application was told had not been made");
            }

            // The value of version r: the last commit at or below r (or, when indeterminate commits lie between that
            // commit and r, any of theirs).
            List<Located> chain = [.. commits.OrderBy(c => c.Event.Version)];
            foreach (Located read in reads)
            {
                int below = chain.FindLastIndex(c => c.Event.Version <= read.Event.Version);
                (long version, long value) floor = below < 0 ? (start.Version, start.Value) : (chain[below].Event.Version, chain[below].Event.Value);
                bool possible = read.Event.Value == floor.value || maybes.Any(m =>
                    m.Event.Version > floor.version && m.Event.Version <= read.Event.Version && m.Event.Value == read.Event.Value);
                if (!possible)
                {
                    invalid.Add($"INVALID READ counter {start.Key}: {read.Where} accepted version {read.Event.Version} with value {read.Event.Value}; " +
                        $"that version holds {floor.value} (committed at version {floor.version})");
                }
            }

            // Reads in order of their checks, commits in order of completion: one walk, keeping the newest version
            // committed before the current read's check began (strictly before: a commit that returned at the very
            // instant the check began may still be invisible to it).
            commits.Sort((x, y) => x.Event.At.CompareTo(y.Event.At));
            reads.Sort((x, y) => x.Event.At.CompareTo(y.Event.At));
            int next = 0;
            Located? newest = null;
            foreach (Located read in reads)
            {
                for (; next < commits.Count && commits[next].Event.At < read.Event.At; next++)
                {
                    newest = newest is { } n && n.Event.Version >= commits[next].Event.Version ? n : commits[next];
                }

                if (newest is not { } commit || commit.Event.Version <= read.Event.Version)
                {
                    continue;
                }

                double ms = (read.Event.At - commit.Event.At) * 1000.0 / frequency;
                string recent = string.Join("; ", faults.Where(f => f.Event.At < read.Event.At && (f.Event.Key == start.Key || f.Event.Key == 0))
                    .TakeLast(3).Select(f => $"{f.Event.Detail} by {f.Name} at {Seconds(f.Event.At)}"));
                stale.Add(string.Create(CultureInfo.InvariantCulture,
                    $"STALE READ counter {start.Key}: {read.Where} accepted version {read.Event.Version} (value {read.Event.Value}) in a scope whose check " +
                    $"began at {Seconds(read.Event.At)}, {ms:F3} ms after {commit.Where} had committed version {commit.Event.Version} " +
                    $"(at {Seconds(commit.Event.At)}); last faults before it: {(recent.Length == 0 ? "none" : recent)}"));
            }
        }

        var faultCounts = faults.Select(f => f.Event.Detail.Split(':'))
            .Where(parts => parts.Length == 1 || parts[1] != "failed")
            .GroupBy(parts => parts[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        int Count(EventKind kind) => all.Count(e => e.Event.Kind == kind);
        return new HistoryReport
        {
            Checks = Count(EventKind.Check),
            Reads = Count(EventKind.Read),
            Commits = Count(EventKind.Commit),
            Maybes = Count(EventKind.Maybe),
            Conflicts = Count(EventKind.Conflict),
            Refused = Count(EventKind.Refused),
            Errors = Count(EventKind.Error),
            Faults = faultCounts,
            LostUpdates = lost,
            StaleReads = stale,
            InvalidReads = invalid,
            GhostWrites = ghosts,
            Misattributed = misattributed,
        };
    }

    // Per flow, in the order it logged: a commit of its own (not a bystander's) follows its read of that counter.
    private static void CheckFlows(List<Located> all, Findings misattributed)
    {
        foreach (IGrouping<(string Name, int Flow), Located> flow in all.GroupBy(e => (e.Name, e.Event.Flow)))
        {
            Located? lastRead = null;
            foreach (Located entry in flow.OrderBy(e => e.Line))
            {
                if (entry.Event.Kind == EventKind.Read)
                {
                    lastRead = entry;
                    continue;
                }

                if (entry.Event.Kind != EventKind.Commit || entry.Event.Detail.StartsWith("bystander-of-", StringComparison.Ordinal))
                {
                    continue;
                }

                HistoryEvent commit = entry.Event;
                if (lastRead is not { Event: var read } || read.Key != commit.Key || read.Value != commit.Value - 1 || read.Version >= commit.Version)
                {
                    string after = lastRead is { } r ? $"its last read ({r.Where}) was of counter {r.Event.Key} at version {r.Event.Version}, value {r.Event.Value}" : "it read nothing before";
                    misattributed.Add($"MISATTRIBUTED WRITE counter {commit.Key}: {entry.Where} committed version {commit.Version} (value {commit.Value}), but {after}");
                }
            }
        }
    }

    private static void CheckChain(CounterRow start, CounterRow end, List<Located> commits, List<Located> maybes, Findings lost)
    {
        int key = start.Key;
        foreach (IGrouping<long, Located> twice in commits.GroupBy(c => c.Event.Version).Where(g => g.Count() > 1))
        {
            lost.Add($"LOST UPDATE counter {key}: version {twice.Key} was committed {twice.Count()} times ({string.Join(", ", twice.Select(c => c.Where))}): " +
                "one write overwrote another");
        }

        // Walk the commits in version order, from the initial row to the final one: each step must add exactly the
        // increments logged between them (indeterminate commits fill gaps, one value each).
        List<Located> chain = [.. commits.OrderBy(c => c.Event.Version).ThenBy(c => c.Event.Value)];
        (long Version, long Value, string Where) previous = (start.Version, start.Value, "the initial row");
        foreach (Located commit in chain)
        {
            Step(previous, (commit.Event.Version, commit.Event.Value, commit.Where), final: false);
            previous = (commit.Event.Version, commit.Event.Value, commit.Where);
        }

        Step(previous, (end.Version, end.Value, "the final row"), final: true);

        void Step((long Version, long Value, string Where) from, (long Version, long Value, string Where) to, bool final)
        {
            if (!final && to.Version == from.Version && from.Where != "the initial row")
            {
                return; // a version committed twice: reported above
            }

            if (final ? to.Version < from.Version : to.Version <= from.Version)
            {
                lost.Add($"LOST UPDATE counter {key}: {to.Where} is at version {to.Version}, not above {from.Where}'s version {from.Version}");
                return;
            }

            long step = to.Value - from.Value;
            if (step < (final ? 0 : 1))
            {
                lost.Add($"LOST UPDATE counter {key}: {to.Where} holds value {to.Value} at version {to.Version}, after {from.Where} had {from.Value} " +
                    $"at version {from.Version}: {(final ? "a committed increment is missing from the database" : "an increment was lost or counted twice")}");
                return;
            }

            // Each value in between must be an indeterminate commit's between the two versions.
            List<long> unlogged = [.. Enumerable.Range(1, (int)Math.Min(step - (final ? 0 : 1), 1000)).Select(i => from.Value + i)
                .Where(v => !maybes.Any(m => m.Event.Value == v && m.Event.Version > from.Version && m.Event.Version <= to.Version))];
            if (unlogged.Count > 0)
            {
                lost.Add($"LOST UPDATE counter {key}: from {from.Where} (version {from.Version}, value {from.Value}) to {to.Where} (version {to.Version}, " +
                    $"value {to.Value}), no process logged the increment(s) to {string.Join(", ", unlogged.Take(10))}{(unlogged.Count > 10 ? $" … ({unlogged.Count})" : "")}");
            }
        }
    }

    /// <summary>An event with where it was logged.</summary>
    private readonly record struct Located(HistoryEvent Event, string Name, int Line)
    {
        /// <summary><c>worker1.0/2 (line 130)</c>: flow 2 of process worker1.0; flow 0 is not written.</summary>
        public string Where => Event.Flow == 0 ? $"{Name} (line {Line})" : $"{Name}/{Event.Flow} (line {Line})";
    }
}
