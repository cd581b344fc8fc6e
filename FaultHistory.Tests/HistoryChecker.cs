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

    public bool Clean => LostUpdates.Count == 0 && StaleReads.Count == 0 && InvalidReads.Count == 0 && GhostWrites.Count == 0;

    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"checks {Checks}, reads accepted {Reads}, commits {Commits} (+{Maybes} indeterminate), conflicts {Conflicts}, refused {Refused}, errors {Errors}\n");
        text.Append("faults: ").AppendJoin(", ", Faults.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key} {f.Value}")).Append('\n');
        text.Append(CultureInfo.InvariantCulture,
            $"lost updates: {LostUpdates.Count}, stale reads: {StaleReads.Count}, invalid reads: {InvalidReads.Count}, ghost writes: {GhostWrites.Count}\n");
        foreach (string violation in LostUpdates.Listed.Concat(StaleReads.Listed).Concat(InvalidReads.Listed).Concat(GhostWrites.Listed).Take(12))
        {
            text.Append(violation).Append('\n');
        }

        return text.ToString();
    }
}

/// <summary>
/// Checks a multi-process history of counters (each write adds one) against the library's promises:
/// <list type="bullet">
/// <item><b>No lost update</b>: along each counter's version chain every commit adds one, so value − version stays
/// what it was in the initial row; no version is committed twice; the final row is the last commit, and every
/// version up to it was committed by a process that logged it (definitely, or indeterminately when its connection
/// broke).</item>
/// <item><b>No stale read accepted</b>: a read of version r whose check began after a commit of a version above r of
/// the same counter had finished is stale. Reads carry the time taken before their check, commits the time taken
/// after they returned, so only real-time order counts; indeterminate commits are not used here.</item>
/// <item>Every read's value is the one its version was committed with.</item>
/// <item>No write refused in an earlier scope (the application caught <c>StaleEntityException</c>: nothing was
/// written) is committed later by another save: the workers log such writes as commits "bystander-of" the counter
/// they were saving.</item>
/// </list>
/// </summary>
internal static class HistoryChecker
{
    public static HistoryReport Check(
        IReadOnlyList<ProcessHistory> histories, IReadOnlyList<CounterRow> initial, IReadOnlyList<CounterRow> final, long frequency = 0)
    {
        frequency = frequency > 0 ? frequency : Stopwatch.Frequency;
        var all = histories.SelectMany(h => h.Events.Select((e, i) => new Located(e, h.Name, i + 1))).ToList();
        long origin = all.Count == 0 ? 0 : all.Min(e => e.Event.At);
        string Seconds(long at) => ((at - origin) / (double)frequency).ToString("F6", CultureInfo.InvariantCulture) + " s";

        List<Located> faults = [.. all.Where(e => e.Event.Kind == EventKind.Fault).OrderBy(e => e.Event.At)];
        var lost = new Findings();
        var stale = new Findings();
        var invalid = new Findings();
        var ghosts = new Findings();
        foreach (CounterRow start in initial)
        {
            long offset = start.Value - start.Version;
            List<Located> of(EventKind kind) => [.. all.Where(e => e.Event.Kind == kind && e.Event.Key == start.Key)];
            List<Located> commits = of(EventKind.Commit), maybes = of(EventKind.Maybe), reads = of(EventKind.Read);
            CounterRow end = final.Single(r => r.Key == start.Key);
            CheckChain(start, end, offset, commits, maybes, lost);

            foreach (Located ghost in commits.Where(c => c.Event.Detail.StartsWith("bystander-of-", StringComparison.Ordinal)))
            {
                ghosts.Add($"GHOST WRITE counter {start.Key}: {ghost.Where} committed version {ghost.Event.Version} (value {ghost.Event.Value}) " +
                    $"in a save of counter {ghost.Event.Detail["bystander-of-".Length..]}: a write refused in an earlier scope, which the application was told had not been made");
            }

            foreach (Located read in reads.Where(r => r.Event.Value - r.Event.Version != offset))
            {
                invalid.Add($"INVALID READ counter {start.Key}: {read.Where} accepted version {read.Event.Version} with value {read.Event.Value}; " +
                    $"version {read.Event.Version} holds {read.Event.Version + offset}");
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
        };
    }

    private static void CheckChain(CounterRow start, CounterRow end, long offset, List<Located> commits, List<Located> maybes, Findings lost)
    {
        int key = start.Key;
        foreach (Located commit in commits)
        {
            if (commit.Event.Value - commit.Event.Version != offset)
            {
                lost.Add($"LOST UPDATE counter {key}: {commit.Where} committed version {commit.Event.Version} with value {commit.Event.Value}; " +
                    $"along the version chain it holds {commit.Event.Version + offset} (an increment was lost or counted twice)");
            }

            if (commit.Event.Version <= start.Version)
            {
                lost.Add($"LOST UPDATE counter {key}: {commit.Where} committed version {commit.Event.Version}, not above the initial version {start.Version}");
            }
        }

        foreach (IGrouping<long, Located> twice in commits.GroupBy(c => c.Event.Version).Where(g => g.Count() > 1))
        {
            lost.Add($"LOST UPDATE counter {key}: version {twice.Key} was committed {twice.Count()} times ({string.Join(", ", twice.Select(c => c.Where))}): " +
                "one write overwrote another");
        }

        if (end.Value - end.Version != offset)
        {
            lost.Add($"LOST UPDATE counter {key}: the final row holds version {end.Version} with value {end.Value}, off the chain by {end.Value - end.Version - offset}");
        }

        if (commits.Count > 0 && commits.MaxBy(c => c.Event.Version) is { } last && last.Event.Version > end.Version)
        {
            lost.Add($"LOST UPDATE counter {key}: {last.Where} committed version {last.Event.Version} but the final row is at version {end.Version}");
        }

        var logged = commits.Select(c => c.Event.Version).Concat(maybes.Where(m => m.Event.Value - m.Event.Version == offset).Select(m => m.Event.Version)).ToHashSet();
        List<long> unlogged = [.. Enumerable.Range(0, (int)Math.Max(0, end.Version - start.Version)).Select(i => start.Version + 1 + i).Where(v => !logged.Contains(v))];
        if (unlogged.Count > 0)
        {
            lost.Add($"LOST UPDATE counter {key}: the final row is at version {end.Version} but no process logged a commit of version(s) " +
                $"{string.Join(", ", unlogged.Take(10))}{(unlogged.Count > 10 ? $" … ({unlogged.Count})" : "")}");
        }
    }

    /// <summary>An event with where it was logged.</summary>
    private readonly record struct Located(HistoryEvent Event, string Name, int Line)
    {
        public string Where => $"{Name} (line {Line})";
    }
}
