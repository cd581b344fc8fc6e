using System.Reflection;
using System.Text;
using SharedEntities.Generator;
using Xunit.Sdk;

namespace SharedEntities.Generator.Tests.Infrastructure;

/// <summary>
/// A small Verify-style snapshot check. <c>Snapshots/{name}.verified.cs</c> is committed; on a mismatch the actual text
/// goes to <c>{name}.received.cs</c> beside it (git-ignored) and the test fails with a line diff. With
/// <c>SHAREDENTITIES_ACCEPT_SNAPSHOTS=1</c> the verified file is (re)written instead.
/// </summary>
internal static class Snapshot
{
    public const string AcceptVariable = "SHAREDENTITIES_ACCEPT_SNAPSHOTS";

    /// <summary>Stands for the generator's version in snapshots, so that a version bump does not touch them.</summary>
    public const string VersionPlaceholder = "{GeneratorVersion}";

    public static readonly string SnapshotDirectory = typeof(Snapshot).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(attribute => attribute.Key == "SnapshotDirectory")
        .Value ?? throw new InvalidOperationException("SnapshotDirectory metadata is missing.");

    public static void Verify(string name, string actual)
    {
        actual = Scrub(actual);
        string verifiedPath = Path.Combine(SnapshotDirectory, name + ".verified.cs");
        string receivedPath = Path.Combine(SnapshotDirectory, name + ".received.cs");

        if (Environment.GetEnvironmentVariable(AcceptVariable) == "1")
        {
            Directory.CreateDirectory(SnapshotDirectory);
            File.WriteAllText(verifiedPath, actual, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            File.Delete(receivedPath);
            return;
        }

        string? expected = File.Exists(verifiedPath) ? File.ReadAllText(verifiedPath).Replace("\r\n", "\n", StringComparison.Ordinal) : null;
        if (expected == actual)
        {
            File.Delete(receivedPath);
            return;
        }

        File.WriteAllText(receivedPath, actual, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        string message = expected is null
            ? $"No snapshot {verifiedPath}. Received {receivedPath}; review it and rename it, or run with {AcceptVariable}=1."
            : $"Snapshot {name} differs (- verified, + received). Received {receivedPath}; accept with {AcceptVariable}=1.\n"
                + LineDiff.Format(expected, actual);
        throw new XunitException(message);
    }

    private static string Scrub(string text)
        => text.Replace(
            "\"SharedEntities.Generator\", \"" + SharedEntityEmitter.GeneratorVersion + "\"",
            "\"SharedEntities.Generator\", \"" + VersionPlaceholder + "\"",
            StringComparison.Ordinal);
}

/// <summary>A readable line diff (longest common subsequence) with a few lines of context around each change.</summary>
internal static class LineDiff
{
    private const int Context = 3;
    private const int MaxLines = 200;

    public static string Format(string expected, string actual)
    {
        string[] a = expected.Split('\n');
        string[] b = actual.Split('\n');
        List<(char Tag, string Line)> script = Script(a, b);

        // Keep changed lines and their context; elide long unchanged runs.
        bool[] keep = new bool[script.Count];
        for (int i = 0; i < script.Count; i++)
        {
            if (script[i].Tag != ' ')
            {
                for (int j = Math.Max(0, i - Context); j <= Math.Min(script.Count - 1, i + Context); j++)
                {
                    keep[j] = true;
                }
            }
        }

        StringBuilder builder = new();
        int written = 0;
        bool elided = false;
        for (int i = 0; i < script.Count && written < MaxLines; i++)
        {
            if (!keep[i])
            {
                if (!elided)
                {
                    builder.Append("  ...\n");
                    elided = true;
                }

                continue;
            }

            elided = false;
            builder.Append(script[i].Tag).Append(' ').Append(script[i].Line).Append('\n');
            written++;
        }

        return builder.ToString();
    }

    private static List<(char Tag, string Line)> Script(string[] a, string[] b)
    {
        int[,] lcs = new int[a.Length + 1, b.Length + 1];
        for (int i = a.Length - 1; i >= 0; i--)
        {
            for (int j = b.Length - 1; j >= 0; j--)
            {
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        List<(char, string)> script = [];
        int x = 0;
        int y = 0;
        while (x < a.Length && y < b.Length)
        {
            if (a[x] == b[y])
            {
                script.Add((' ', a[x++]));
                y++;
            }
            else if (lcs[x + 1, y] >= lcs[x, y + 1])
            {
                script.Add(('-', a[x++]));
            }
            else
            {
                script.Add(('+', b[y++]));
            }
        }

        while (x < a.Length)
        {
            script.Add(('-', a[x++]));
        }

        while (y < b.Length)
        {
            script.Add(('+', b[y++]));
        }

        return script;
    }
}
