using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace SharedEntities.Samples.Tests;

/// <summary>One run of the sample as a process: its output, its exit code and its summary line.</summary>
internal sealed partial record SampleRun(int ExitCode, string Output, string Errors)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(4);

    public static SampleRun Start(params string[] arguments) => Start(new Dictionary<string, string>(), arguments);

    /// <summary>A run with <paramref name="environment"/> added to this process's environment (which the sample's workers inherit).</summary>
    public static SampleRun Start(IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        string sample = Path.Combine(RepositoryRoot(), "samples", "SharedSheets", "bin", Configuration(), "net10.0", "SharedSheets.dll");
        Assert.True(File.Exists(sample), $"The sample is not built: {sample}");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(sample);
        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var output = new StringBuilder();
        var errors = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(errors, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(Limit))
        {
            process.Kill(entireProcessTree: true); // the sample and the workers it started
            process.WaitForExit();
            Assert.Fail($"The sample did not finish within {Limit}:\n{output}\n{errors}");
        }

        process.WaitForExit();
        return new SampleRun(process.ExitCode, output.ToString(), errors.ToString());
    }

    /// <summary>The summary line's numbers by name.</summary>
    public IReadOnlyDictionary<string, int> Summary
    {
        get
        {
            Match line = SummaryLine().Match(Output);
            Assert.True(line.Success, $"No summary line:\n{this}");
            Assert.EndsWith(line.Value.Trim(), Output.TrimEnd(), StringComparison.Ordinal); // the last line
            return line.Groups["name"].Captures.Zip(line.Groups["value"].Captures)
                .ToDictionary(p => p.First.Value, p => int.Parse(p.Second.Value, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public override string ToString() => $"exit code {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Errors}";

    private static void Append(StringBuilder text, string? line)
    {
        if (line is not null)
        {
            lock (text)
            {
                text.AppendLine(line);
            }
        }
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "SharedEntities.slnx")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException($"No SharedEntities.slnx above {AppContext.BaseDirectory}.");
    }

    // bin/<Configuration>/net10.0/ of this test assembly.
    private static string Configuration() => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    [GeneratedRegex(@"^summary:(?: (?<name>[a-z_]+)=(?<value>\d+))+\s*$", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}
