using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace SharedEntities.Package.Tests;

[Collection(PackedPackagesGroup.Name)]
public sealed partial class PackageTests(PackedPackages packages)
{
    private const string CompilerSide = "analyzers/dotnet/roslyn4.14/cs/";

    [Fact]
    public void The_runtime_package_holds_the_runtime_and_the_compiler_side()
    {
        using ZipArchive package = Open("SharedEntities");
        string[] entries = package.Entries.Select(e => e.FullName).ToArray();

        Assert.Contains("lib/net10.0/SharedEntities.dll", entries);
        Assert.Contains("lib/net10.0/SharedEntities.xml", entries);
        Assert.Contains(CompilerSide + "SharedEntities.Generator.dll", entries);
        Assert.Contains(CompilerSide + "SharedEntities.Analyzers.dll", entries);
        Assert.Contains(CompilerSide + "SharedEntities.CodeFixes.dll", entries);
        Assert.Contains("buildTransitive/SharedEntities.targets", entries);
        Assert.Contains("README.md", entries);
        // Compiler components never land where the app would load them, and Roslyn is never shipped.
        Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal) && !e.StartsWith("lib/net10.0/SharedEntities.", StringComparison.Ordinal));
        Assert.DoesNotContain(entries, e => e.Contains("Microsoft.CodeAnalysis", StringComparison.Ordinal));

        XElement metadata = Nuspec(package);
        Assert.Equal("SharedEntities", Value(metadata, "id"));
        Assert.Equal("MIT", Value(metadata, "license"));
        Assert.Equal("README.md", Value(metadata, "readme"));
        Assert.False(string.IsNullOrWhiteSpace(Value(metadata, "description")));
        XElement repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
        Assert.StartsWith("https://", (string?)repository.Attribute("url"), StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{40}$", (string?)repository.Attribute("commit") ?? "");
        Assert.True(File.Exists(Path.Combine(packages.Feed, $"SharedEntities.{packages.Version}.snupkg")), "no symbol package");
    }

    [Fact]
    public void The_runtime_package_depends_on_no_store()
    {
        using ZipArchive package = Open("SharedEntities");
        string[] dependencies = Dependencies(package).Select(d => (string?)d.Attribute("id") ?? "").ToArray();

        Assert.DoesNotContain(dependencies, id => id.Contains("Sqlite", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(dependencies, id => id.StartsWith("SharedEntities", StringComparison.Ordinal));
        Assert.DoesNotContain(package.Entries, e => e.FullName.Contains("Memcached", StringComparison.Ordinal) || e.FullName.Contains("Sqlite", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("SharedEntities.Memcached", new string[0])]
    [InlineData("SharedEntities.Sqlite", new[] { "Microsoft.Data.Sqlite.Core" })]
    [InlineData("SharedEntities.EntityFrameworkCore", new[] { "Microsoft.EntityFrameworkCore.Relational" })]
    public void A_package_brings_the_runtime_with_its_generator_and_analyzers_and_only_its_own_dependencies(string id, string[] others)
    {
        using ZipArchive package = Open(id);
        Assert.Contains(package.Entries, e => e.FullName == $"lib/net10.0/{id}.dll");
        Assert.Contains(package.Entries, e => e.FullName == $"lib/net10.0/{id}.xml");
        Assert.Contains("README.md", package.Entries.Select(e => e.FullName));
        Assert.Equal(id, Value(Nuspec(package), "id"));
        Assert.True(File.Exists(Path.Combine(packages.Feed, $"{id}.{packages.Version}.snupkg")), "no symbol package");

        XElement[] dependencies = Dependencies(package);
        XElement runtime = Assert.Single(dependencies, d => (string?)d.Attribute("id") == "SharedEntities");
        Assert.Equal(packages.Version, (string?)runtime.Attribute("version"));
        // A consumer of this package alone must still get the generator, analyzers and build targets.
        string? excluded = (string?)runtime.Attribute("exclude");
        Assert.True(excluded is null || (!excluded.Contains("Analyzers", StringComparison.Ordinal) && !excluded.Contains("Build", StringComparison.Ordinal)), $"exclude=\"{excluded}\"");
        // Logging, options and DI abstractions come with the runtime; nothing else than the package's own needs.
        Assert.Equal(others.Append("SharedEntities").Order(StringComparer.Ordinal), dependencies.Select(d => (string)d.Attribute("id")!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_consumer_runs_the_generated_accessors_across_two_runtimes()
    {
        string consumers = packages.CopyConsumers();
        CommandResult build = packages.Build(consumers, "Working/Working.csproj");
        Assert.True(build.ExitCode == 0, build.ToString());
        // Nullable on, warnings as errors, latest-recommended analysis: the generated code added no warning.
        Assert.DoesNotMatch(WarningLine(), build.Output);

        CommandResult run = packages.Run(consumers, "run", "--no-build", "--project", "Working/Working.csproj");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("second process, first read: Q2", run.Output, StringComparison.Ordinal);
        Assert.Contains("second process, next scope: Q3, total 15", run.Output, StringComparison.Ordinal);
        Assert.Contains("consumer: ok", run.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MemcachedAdoNet/MemcachedAdoNet.csproj")]
    [InlineData("MemcachedEfCore/MemcachedEfCore.csproj")]
    public void A_memcached_and_postgresql_consumer_builds_and_restores_nothing_of_sqlite(string project)
    {
        string consumers = packages.CopyConsumers();
        CommandResult build = packages.Build(consumers, project);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.DoesNotMatch(WarningLine(), build.Output);

        // The whole restored graph: no SQLite package (Microsoft.Data.Sqlite.Core, SQLitePCLRaw) came with SharedEntities.
        string assets = File.ReadAllText(Path.Combine(consumers, Path.GetDirectoryName(project)!, "obj", "project.assets.json"));
        Assert.Contains($"SharedEntities.Memcached/{packages.Version}", assets, StringComparison.Ordinal);
        Assert.DoesNotContain("sqlite", assets, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_broken_declaration_gives_SE0001_at_build()
    {
        string consumers = packages.CopyConsumers();
        CommandResult build = packages.Build(consumers, "Broken/Broken.csproj");

        Assert.NotEqual(0, build.ExitCode);
        Assert.Matches(@"Invoice\.cs\(7,14\): error SE0001: .*Invoice", build.Output);
    }

    [Fact]
    public void LangVersion_12_gives_one_clear_warning()
    {
        string consumers = packages.CopyConsumers();
        CommandResult build = packages.Build(consumers, "OldLangVersion/OldLangVersion.csproj");

        Assert.NotEqual(0, build.ExitCode); // C# 12 cannot compile partial properties
        string[] warnings = Diagnostics(build, "SE9002");
        Assert.Single(warnings);
        Assert.Contains("<LangVersion>13</LangVersion>", warnings[0], StringComparison.Ordinal);
        Assert.Empty(Diagnostics(build, "SE9001"));
    }

    [Fact]
    public void An_older_compiler_gives_one_clear_warning()
    {
        // What an SDK with Roslyn 4.8 reports; the SDK then loads no analyzer from the roslyn4.14 folder.
        string consumers = packages.CopyConsumers();
        CommandResult build = packages.Build(consumers, "OldLangVersion/OldLangVersion.csproj", "LangVersion=13", "CompilerApiVersion=roslyn4.8");

        string[] warnings = Diagnostics(build, "SE9001");
        Assert.Single(warnings);
        Assert.Contains("roslyn4.8", warnings[0], StringComparison.Ordinal);
        Assert.Empty(Diagnostics(build, "SE9002"));
    }

    [Fact]
    public void A_current_compiler_and_language_version_get_no_compiler_warning()
    {
        string consumers = packages.CopyConsumers();
        CommandResult build = packages.Build(consumers, "OldLangVersion/OldLangVersion.csproj", "LangVersion=13");

        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.Empty(Diagnostics(build, "SE9001"));
        Assert.Empty(Diagnostics(build, "SE9002"));
    }

    /// <summary>The distinct lines reporting <paramref name="id"/> (MSBuild repeats each warning in its summary).</summary>
    private static string[] Diagnostics(CommandResult build, string id) =>
        build.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Contains($" {id}: ", StringComparison.Ordinal)).Distinct().ToArray();

    private ZipArchive Open(string id) => ZipFile.OpenRead(Path.Combine(packages.Feed, $"{id}.{packages.Version}.nupkg"));

    private static XElement[] Dependencies(ZipArchive package) =>
        Nuspec(package).Descendants().Where(e => e.Name.LocalName == "dependency").ToArray();

    private static XElement Nuspec(ZipArchive package)
    {
        ZipArchiveEntry entry = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using Stream stream = entry.Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string? Value(XElement metadata, string name) =>
        metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;

    [GeneratedRegex(@": warning [A-Z]+\d+:")]
    private static partial Regex WarningLine();
}
