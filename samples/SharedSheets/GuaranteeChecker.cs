using System.Globalization;

namespace SharedSheets;

/// <summary>
/// Checks "no stale read accepted" from the workers' logs. A worker logs <c>read &lt;version&gt; &lt;ticks&gt;</c> for
/// every version a scope accepted (the time is taken before the scope's check began) and
/// <c>commit &lt;version&gt; &lt;ticks&gt;</c> for every commit (the time is taken after the commit returned). A read
/// is stale when a newer version had been committed before its check began. All processes run on one machine, so
/// they share the clock.
/// </summary>
internal static class GuaranteeChecker
{
    public static CheckResult Check(IEnumerable<string> lines)
    {
        var reads = new List<(long Version, long Ticks)>();
        var commits = new List<(long Version, long Ticks)>();
        foreach (string line in lines)
        {
            if (line.Length == 0)
            {
                continue;
            }

            string[] parts = line.Split(' ');
            if (parts.Length != 3
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long version)
                || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks))
            {
                throw new InvalidDataException($"Not a log line: \"{line}\".");
            }

            (parts[0] switch
            {
                "read" => reads,
                "commit" => commits,
                _ => throw new InvalidDataException($"Not a log line: \"{line}\"."),
            }).Add((version, ticks));
        }

        // newest[i]: the newest version among the first i + 1 commits in time order.
        commits.Sort((a, b) => a.Ticks.CompareTo(b.Ticks));
        long[] times = commits.Select(c => c.Ticks).ToArray();
        long[] newest = new long[commits.Count];
        for (int i = 0; i < commits.Count; i++)
        {
            newest[i] = Math.Max(commits[i].Version, i == 0 ? long.MinValue : newest[i - 1]);
        }

        int stale = 0;
        string? first = null;
        foreach ((long version, long ticks) in reads)
        {
            int committedBefore = LowerBound(times, ticks); // commits that finished strictly before the check began
            if (committedBefore > 0 && version < newest[committedBefore - 1])
            {
                stale++;
                first ??= $"a scope accepted version {version} although version {newest[committedBefore - 1]} was committed before its check began";
            }
        }

        return new CheckResult(reads.Count, commits.Count, stale, first);
    }

    private static int LowerBound(long[] sorted, long value)
    {
        int low = 0, high = sorted.Length;
        while (low < high)
        {
            int middle = (low + high) / 2;
            if (sorted[middle] < value)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }
}

/// <summary>What <see cref="GuaranteeChecker"/> found.</summary>
internal sealed record CheckResult(int Reads, int Commits, int StaleAccepted, string? FirstViolation);
