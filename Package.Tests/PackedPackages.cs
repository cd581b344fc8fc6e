using System.Text.RegularExpressions;

namespace SharedEntities.Package.Tests;

/// <summary>
/// Packs the four packages once per test run into a temporary feed, and gives each consumer build a copy of
/// nuget/consumers whose nuget.config points at that feed. The consumers' restores go to a private NUGET_PACKAGES
/// folder, so a copy of the same version cached by an earlier run is never used. Everything is removed at the end.
/// </summary>
public sealed partial class PackedPackages : IDisposable
{
    internal static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(8);

    public PackedPackages()
    {
        RepositoryRoot = FindRepositoryRoot();
        Root = Directory.CreateTempSubdirectory("sharedentities-package-tests-").FullName;
        Feed = Directory.CreateDirectory(Path.Combine(Root, "feed")).FullName;
        PackagesFolder = Directory.CreateDirectory(Path.Combine(Root, "packages")).FullName;

        foreach (string id in Ids)
        {
            string project = $"Runtime/{id}/{id}.csproj";
            // Packing restores the checkout's own projects, whose obj/project.assets.json the solution's build reads
            // at the same moment: it must restore into the same package folder as that build (the inherited one),
            // or the build finds its packages "deleted since restore" once this fixture removes its folder.
            CommandResult pack = Dotnet.Run(RepositoryRoot, packagesFolder: null, CommandTimeout, "pack", project, "-c", "Release", "-o", Feed);
            if (pack.ExitCode != 0)
            {
                throw new InvalidOperationException("Packing failed. " + pack);
            }
        }

        string runtimePackage = Directory.GetFiles(Feed, "SharedEntities.*.nupkg").Select(Path.GetFileName).OfType<string>()
            .Single(name => PackageFileName().IsMatch(name));
        Version = PackageFileName().Match(runtimePackage).Groups["version"].Value;
    }

    /// <summary>The packages, each packed from its project <c>Runtime/{id}/{id}.csproj</c>.</summary>
    public static IReadOnlyList<string> Ids { get; } = ["SharedEntities", "SharedEntities.Memcached", "SharedEntities.Sqlite", "SharedEntities.EntityFrameworkCore"];

    /// <summary>The checkout (the folder holding SharedEntities.slnx).</summary>
    public string RepositoryRoot { get; }

    /// <summary>The folder of the packed .nupkg and .snupkg files.</summary>
    public string Feed { get; }

    /// <summary>The private NUGET_PACKAGES folder of every consumer restore.</summary>
    public string PackagesFolder { get; }

    /// <summary>The packed version.</summary>
    public string Version { get; }

    private string Root { get; }

    /// <summary>A fresh copy of nuget/consumers, restoring SharedEntities from <see cref="Feed"/>.</summary>
    public string CopyConsumers()
    {
        string target = Directory.CreateDirectory(Path.Combine(Root, "consumers-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        Copy(Path.Combine(RepositoryRoot, "nuget", "consumers"), target);
        string config = Path.Combine(target, "nuget.config");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"../../artifacts/nuget\"", $"\"{Feed}\"", StringComparison.Ordinal));
        return target;
    }

    /// <summary>Builds (restoring first) one project of a consumers copy against the packed version.</summary>
    public CommandResult Build(string consumers, string project, params string[] properties) =>
        Dotnet.Run(consumers, PackagesFolder, CommandTimeout,
            ["build", project, $"-p:SharedEntitiesVersion={Version}", "-nodeReuse:false", .. properties.Select(p => "-p:" + p)]);

    public CommandResult Run(string workingDirectory, params string[] arguments) =>
        Dotnet.Run(workingDirectory, PackagesFolder, CommandTimeout, arguments);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A build server may still hold a file for a moment; the folder is under the temp folder.
        }
    }

    internal static string FindRepositoryRoot()
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

    private static void Copy(string source, string target)
    {
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source, file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            {
                continue;
            }

            string destination = Path.Combine(target, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }
    }

    [GeneratedRegex(@"^SharedEntities\.(?<version>\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)\.nupkg$")]
    private static partial Regex PackageFileName();
}

[CollectionDefinition(Name)]
public sealed class PackedPackagesGroup : ICollectionFixture<PackedPackages>
{
    public const string Name = "packed packages";
}
