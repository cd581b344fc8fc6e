using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SharedEntities.Model.Tests;

/// <summary>
/// docs/model/protocol.pml, compiled by spin with some <c>-D</c> defines into a verifier (<c>pan</c>) in a folder of
/// its own (tests run in parallel), which <see cref="Dispose"/> deletes. Every process it starts has a timeout and is
/// killed, with its children, by its own id when the timeout passes.
/// </summary>
internal sealed class ModelCheck : IDisposable
{
    private const string Install = "`bash scripts/test.sh` installs spin and gcc (apt-get install -y spin gcc).";

    private readonly string _folder;
    private readonly string[] _defines;
    private readonly ITestOutputHelper _output;

    private ModelCheck(string folder, string[] defines, ITestOutputHelper output)
    {
        _folder = folder;
        _defines = defines;
        _output = output;
    }

    /// <summary>
    /// Generates the verifier (<c>spin -a</c>) and compiles it (<c>gcc -DSAFETY</c>: assertions and invalid end
    /// states, no never claim). <paramref name="collapse"/> compresses stored states (exhaustive, just smaller).
    /// </summary>
    public static ModelCheck Compile(ITestOutputHelper output, IEnumerable<string> defines, string optimization = "-O2", bool collapse = false)
    {
        string spin = FindTool("spin");
        string gcc = FindTool("gcc");
        string model = Path.Combine(AppContext.BaseDirectory, "protocol.pml");
        Assert.True(File.Exists(model), $"The model is not next to the test assembly: {model}");

        string folder = Directory.CreateTempSubdirectory("sharedentities-model-").FullName;
        var check = new ModelCheck(folder, [.. defines], output);
        try
        {
            File.Copy(model, Path.Combine(folder, "protocol.pml"));
            output.WriteLine($"model: protocol.pml {string.Join(' ', check._defines)}");
            check.Run(spin, [.. check._defines, "-a", "protocol.pml"], TimeSpan.FromSeconds(60), "spin -a");
            string[] cc = collapse
                ? [optimization, "-DSAFETY", "-DCOLLAPSE", "-w", "-o", "pan", "pan.c"]
                : [optimization, "-DSAFETY", "-w", "-o", "pan", "pan.c"];
            check.Run(gcc, cc, TimeSpan.FromSeconds(180), "gcc");
            return check;
        }
        catch
        {
            check.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs the verifier: an exhaustive search (no bitstate hashing) that stops at the first error, with a search
    /// depth limit far above the model's depth (so that a truncated search shows as such in the result).
    /// <paramref name="ignoreEndStates"/> (<c>-E</c>) looks for assertion violations only.
    /// </summary>
    public PanResult Verify(TimeSpan timeout, bool ignoreEndStates = false)
    {
        string[] arguments = ignoreEndStates ? ["-m10000", "-E"] : ["-m10000"];
        var clock = Stopwatch.StartNew();
        (int exitCode, string text) = Run(Path.Combine(_folder, "pan"), arguments, timeout, "pan", checkExitCode: false);
        clock.Stop();
        PanResult result = PanResult.Parse(text, clock.Elapsed);
        _output.WriteLine(result.Summary);
        if (exitCode != 0 && result.Errors == 0)
        {
            Assert.Fail($"pan exited with {exitCode} and reported no error:\n{text}");
        }

        return result;
    }

    /// <summary>Replays the counterexample pan wrote (<c>spin -T -t</c>): the model's narration of each step.</summary>
    public string Replay()
    {
        (_, string text) = Run(FindTool("spin"), ["-T", "-t", .. _defines, "protocol.pml"], TimeSpan.FromSeconds(60), "spin -t", checkExitCode: false);
        var steps = new StringBuilder();
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith("#processes", StringComparison.Ordinal))
            {
                break; // then come the final values of every variable
            }

            steps.AppendLine(line.TrimEnd());
        }

        return steps.ToString();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A verifier we killed may still hold a file for a moment; the folder is in the temp directory anyway.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private (int ExitCode, string Output) Run(string file, string[] arguments, TimeSpan timeout, string what, bool checkExitCode = true)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = _folder,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"{what} did not finish within {timeout.TotalSeconds:0} s (killed).");
        }

        process.WaitForExit(); // drains the redirected streams
        string text = stdout.Result + stderr.Result;
        if (checkExitCode && process.ExitCode != 0)
        {
            Assert.Fail($"{what} failed (exit code {process.ExitCode}):\n{text}");
        }

        return (process.ExitCode, text);
    }

    private static string FindTool(string name)
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        // Not a skip: a model check that cannot run must not pass.
        Assert.Fail($"{name} is not on PATH, so the protocol model cannot be checked. {Install}");
        return name;
    }
}

/// <summary>What pan reported.</summary>
internal sealed partial record PanResult(
    int Errors,
    long StatesStored,
    long Transitions,
    int DepthReached,
    bool Complete,
    string? Violation,
    int? ViolationDepth,
    TimeSpan Elapsed,
    string Output)
{
    public string Summary =>
        FormattableString.Invariant(
            $"pan: errors {Errors}, {StatesStored:N0} states stored, {Transitions:N0} transitions, depth reached {DepthReached}, {(Complete ? "search complete" : "search not complete")}, {Elapsed.TotalSeconds:0.0} s")
        + (Violation is null ? "" : FormattableString.Invariant($"\npan: {Violation} (at depth {ViolationDepth})"));

    public static PanResult Parse(string output, TimeSpan elapsed)
    {
        Match errors = ErrorsLine().Match(output);
        Assert.True(errors.Success, $"pan's output has no result line:\n{output}");
        Match violation = ViolationLine().Match(output);

        // pan says so when the depth limit cut the search, or when it stopped before the end (at an error).
        bool complete = !output.Contains("max search depth too small", StringComparison.Ordinal)
            && !output.Contains("Search not completed", StringComparison.Ordinal);
        return new PanResult(
            Errors: Int(errors.Groups["errors"].Value),
            StatesStored: Long(Number(StatesLine(), output)),
            Transitions: Long(Number(TransitionsLine(), output)),
            DepthReached: Int(errors.Groups["depth"].Value),
            Complete: complete,
            Violation: violation.Success ? violation.Groups["what"].Value.Trim() : null,
            ViolationDepth: violation.Success ? Int(violation.Groups["depth"].Value) : null,
            Elapsed: elapsed,
            Output: output);
    }

    private static string Number(Regex regex, string output)
    {
        Match match = regex.Match(output);
        Assert.True(match.Success, $"pan's output lacks /{regex}/:\n{output}");
        return match.Groups[1].Value;
    }

    private static int Int(string s) => int.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);

    private static long Long(string s) => long.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"depth reached (?<depth>\d+), errors: (?<errors>\d+)")]
    private static partial Regex ErrorsLine();

    [GeneratedRegex(@"^\s*(\d+) states, stored", RegexOptions.Multiline)]
    private static partial Regex StatesLine();

    [GeneratedRegex(@"^\s*(\d+) transitions", RegexOptions.Multiline)]
    private static partial Regex TransitionsLine();

    [GeneratedRegex(@"^pan:\d+: (?<what>.+?) \(at depth (?<depth>\d+)\)", RegexOptions.Multiline)]
    private static partial Regex ViolationLine();
}
