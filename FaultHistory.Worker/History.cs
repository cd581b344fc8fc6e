using System.Diagnostics;
using System.Globalization;

namespace SharedEntities.FaultHistory;

// Linked into FaultHistory.Tests: the workers write these lines, the test's checker reads them.

/// <summary>What a history line records.</summary>
internal enum EventKind
{
    /// <summary>A process started (detail: worker, generation, path, pid).</summary>
    Start,

    /// <summary>A scope's check of <see cref="HistoryEvent.Key"/> is about to begin.</summary>
    Check,

    /// <summary>A scope accepted (<see cref="HistoryEvent.Version"/>, <see cref="HistoryEvent.Value"/>); the time is the one taken before its check.</summary>
    Read,

    /// <summary>A commit of (version, value) returned; the time is taken after it returned.</summary>
    Commit,

    /// <summary>A commit of (version, value) failed in a way that does not say whether the database committed it.</summary>
    Maybe,

    /// <summary>A write was refused by its version guard (another process committed first): nothing was written.</summary>
    Conflict,

    /// <summary>A read or a write was refused by the runtime (store unavailable, stale snapshot); detail says which.</summary>
    Refused,

    /// <summary>Anything else went wrong (a database restart, say); the process starts a new session.</summary>
    Error,

    /// <summary>A fault was injected (detail: its kind, then <c>ok</c> or <c>failed</c>).</summary>
    Fault,

    /// <summary>A process finished its run normally.</summary>
    End,
}

/// <summary>
/// One line of a history: <c>kind time flow key version value detail</c>, space-separated, the time a raw
/// <see cref="Stopwatch.GetTimestamp"/> (CLOCK_MONOTONIC on Linux: one clock for every process of the machine), the
/// flow the concurrent loop of the process that logged it (0 for the process's own events and the test's faults).
/// Fields that do not apply are 0; the detail is one word or <c>-</c> (spaces in it become underscores).
/// </summary>
internal readonly record struct HistoryEvent(EventKind Kind, long At, int Key = 0, long Version = 0, long Value = 0, string Detail = "-", int Flow = 0)
{
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Kind.ToString().ToLowerInvariant()} {At} {Flow} {Key} {Version} {Value} {Word(Detail)}");

    /// <summary>Parses a line written by <see cref="ToString"/>; <see langword="null"/> for a truncated last line (a killed writer).</summary>
    public static HistoryEvent? Parse(string line)
    {
        string[] parts = line.Split(' ');
        if (parts.Length != 7 || !Enum.TryParse(parts[0], ignoreCase: true, out EventKind kind)
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long at)
            || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int flow)
            || !int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out int key)
            || !long.TryParse(parts[4], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long version)
            || !long.TryParse(parts[5], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
        {
            return null;
        }

        return new HistoryEvent(kind, at, key, version, value, parts[6], flow);
    }

    private static string Word(string text)
    {
        string word = string.Join('_', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return word.Length == 0 ? "-" : word.Length > 200 ? word[..200] : word;
    }
}

/// <summary>
/// Appends history lines to a file, each flushed as it is written (a process that kills itself, or is killed, leaves
/// every line it wrote). Thread-safe: the process's flows log concurrently, and a fault's background eviction logs from
/// another thread.
/// </summary>
internal sealed class HistoryWriter : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly Lock _lock = new();

    public HistoryWriter(string path) => _writer = new StreamWriter(path, append: true) { AutoFlush = true };

    public void Write(HistoryEvent entry)
    {
        lock (_lock)
        {
            _writer.WriteLine(entry.ToString());
        }
    }

    /// <summary>
    /// Writes a process's last lines, then runs <paramref name="end"/> (its kill) without letting go of the file: no
    /// other flow's line can follow them.
    /// </summary>
    public void WriteLast(IEnumerable<HistoryEvent> entries, Action end)
    {
        lock (_lock)
        {
            foreach (HistoryEvent entry in entries)
            {
                _writer.WriteLine(entry.ToString());
            }

            end();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _writer.Dispose();
        }
    }
}
