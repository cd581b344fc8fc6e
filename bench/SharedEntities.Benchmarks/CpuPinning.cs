using System.Diagnostics;
using System.Globalization;

namespace SharedEntities.Benchmarks;

/// <summary>
/// The driver's <c>--pin</c>: memcached on one CPU, the client on the others, for the pipelined-read pairs. Unpinned,
/// the scheduler on a 2-core machine places the client and memcached's worker differently from run to run, and the
/// store / raw ratio of the same code moved by up to 0.24 between runs; pinned, both sides of a pair run the same way.
/// The price: every wake-up crosses CPUs, so the raw baseline itself is slower than unpinned. Linux only
/// (<c>taskset</c>, util-linux).
/// </summary>
internal static class CpuPinning
{
    public const string Taskset = "/usr/bin/taskset";

    /// <summary>The CPU for the server: the last one, when there are at least two and <c>taskset</c> is there.</summary>
    public static int? ServerCpu => OperatingSystem.IsLinux() && File.Exists(Taskset) && Environment.ProcessorCount >= 2
        ? Environment.ProcessorCount - 1
        : null;

    /// <summary>The CPUs left to the client: all but <see cref="ServerCpu"/>.</summary>
    public static string ClientCpus => $"0-{Math.Max(0, Environment.ProcessorCount - 2)}";

    /// <summary>Restricts every thread of this process (and the threads and processes it starts later) to <paramref name="cpus"/>, a taskset list.</summary>
    public static void PinThisProcess(string cpus)
    {
        using Process taskset = Process.Start(new ProcessStartInfo(Taskset)
        {
            ArgumentList = { "-a", "-p", "-c", cpus, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) },
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        taskset.StandardOutput.ReadToEnd();
        taskset.WaitForExit();
        if (taskset.ExitCode != 0)
        {
            throw new InvalidOperationException($"taskset -a -p -c {cpus} failed with exit code {taskset.ExitCode}.");
        }
    }

    /// <summary>Lets every thread of this process run on every CPU again.</summary>
    public static void UnpinThisProcess() => PinThisProcess($"0-{Environment.ProcessorCount - 1}");
}
