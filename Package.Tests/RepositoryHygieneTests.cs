using System.Diagnostics;
using System.Text.RegularExpressions;

namespace SharedEntities.Package.Tests;

/// <summary>
/// No tracked file refers to a path or a document outside the repository: a comment, a doc or a message states what
/// it needs, or names a file of the repository. The files are those <c>git ls-files</c> lists, as they are in the
/// working tree; binary files are skipped. Needs no packed package, so it runs on its own in a moment.
/// </summary>
public sealed partial class RepositoryHygieneTests
{
    /// <summary>This file spells out the patterns it looks for, so it is the one file not scanned.</summary>
    private const string ThisFile = "Package.Tests/RepositoryHygieneTests.cs";

    [Fact]
    public void No_tracked_file_refers_outside_the_repository()
    {
        string root = PackedPackages.FindRepositoryRoot();
        string[] tracked = TrackedFiles(root);
        HashSet<string> names = new(tracked.Select(Path.GetFileName).OfType<string>(), StringComparer.OrdinalIgnoreCase);

        List<string> found = [];
        foreach (string file in tracked.Where(file => file != ThisFile))
        {
            string path = Path.Combine(root, file);
            if (!File.Exists(path))
            {
                continue; // deleted in the working tree, not yet committed
            }

            string text = File.ReadAllText(path);
            if (text.Contains('\0', StringComparison.Ordinal))
            {
                continue; // binary
            }

            string[] lines = text.Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                found.AddRange(OutsideReferences(lines[i], names).Select(reference => $"{file}:{i + 1}: {reference}"));
            }
        }

        Assert.True(found.Count == 0, "Tracked files refer outside the repository:\n" + string.Join('\n', found));
    }

    [Theory]
    [InlineData("see /work/shared/TOOLCHAIN.md.", "/work/")]
    [InlineData("(DESIGN.md, \"Diagnostics\")", "DESIGN.md")]
    [InlineData("the rules of STYLE.md", "STYLE.md")]
    [InlineData("<Compile Include=\"../shared/Helpers.cs\" />", "../shared")]
    [InlineData("The Django story in `shared/seeds`", "shared/seeds")]
    [InlineData("copied from seeds/sharedobject.py", "seeds/")]
    [InlineData("notes in ../../notes/Plan.md", "Plan.md")]
    public void A_reference_outside_is_found(string line, string expected)
        => Assert.Contains(expected, OutsideReferences(line, KnownNames));

    [Theory]
    [InlineData("a page each in docs/diagnostics/SE0101.md")]
    [InlineData("[where the design came from](../protocol.md#where-the-design-came-from)")]
    [InlineData("see README.md's quick start")]
    [InlineData("; https://github.com/dotnet/roslyn-analyzers/blob/main/src/ReleaseTrackingAnalyzers.Help.md")]
    [InlineData("writes `BenchmarkDotNet.Artifacts/results/*-asm.md`")]
    [InlineData("A failing case keeps its folder (`/tmp/se-fault-…`)")]
    [InlineData("a reader re-seeds over it by CAS; the two seeds are a recipe and a story")]
    public void A_reference_inside_or_no_reference_is_not_found(string line)
        => Assert.Empty(OutsideReferences(line, KnownNames));

    [Fact]
    public void The_file_left_out_is_this_one_under_its_tracked_name()
        => Assert.Contains(ThisFile, TrackedFiles(PackedPackages.FindRepositoryRoot()));

    private static readonly HashSet<string> KnownNames = new(["README.md", "SE0101.md", "protocol.md"], StringComparer.OrdinalIgnoreCase);

    /// <summary>The references in <paramref name="line"/> to something outside: a path of the build machine or beside
    /// the repository, or a Markdown document whose name no tracked file has.</summary>
    private static IEnumerable<string> OutsideReferences(string line, HashSet<string> trackedNames)
    {
        foreach (Match match in OutsidePath().Matches(line))
        {
            yield return match.Value;
        }

        foreach (Match match in MarkdownPath().Matches(Url().Replace(line, "")))
        {
            string name = match.Value[(match.Value.LastIndexOf('/') + 1)..];
            if (!trackedNames.Contains(name))
            {
                yield return name;
            }
        }
    }

    private static string[] TrackedFiles(string root)
    {
        ProcessStartInfo start = new("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[] { "-C", root, "ls-files", "-z" })
        {
            start.ArgumentList.Add(argument);
        }

        using Process git = Process.Start(start) ?? throw new InvalidOperationException("Could not start git.");
        Task<string> error = git.StandardError.ReadToEndAsync();
        string output = git.StandardOutput.ReadToEnd();
        git.WaitForExit();
        Assert.True(git.ExitCode == 0, $"git ls-files failed in {root} (the test reads a git checkout): {error.Result}");
        return output.Split('\0', StringSplitOptions.RemoveEmptyEntries);
    }

    // The build machine's work folder, a folder beside the repository, the seeds' folder.
    [GeneratedRegex(@"(?<![\w.])/work/|\.\./shared\b|\bshared/seeds\b|\bseeds/", RegexOptions.IgnoreCase)]
    private static partial Regex OutsidePath();

    // A path or name ending in .md; not part of a longer word or a glob (*-asm.md).
    [GeneratedRegex(@"(?<![\w*./-])[\w./-]*\w\.md\b", RegexOptions.IgnoreCase)]
    private static partial Regex MarkdownPath();

    [GeneratedRegex(@"https?://\S+")]
    private static partial Regex Url();
}
