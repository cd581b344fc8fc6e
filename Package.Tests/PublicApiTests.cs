namespace SharedEntities.Package.Tests;

/// <summary>
/// Every shipped library declares its public API, and a library under <c>Runtime/</c> whose public surface differs
/// from its declaration does not build. The second test builds a small library of its own in a temporary folder under
/// <c>Runtime/</c> (so that it gets the same build settings as the shipped ones), then removes it.
/// </summary>
public sealed class PublicApiTests
{
    private static readonly string Root = PackedPackages.FindRepositoryRoot();

    [Fact]
    public void Every_shipped_library_has_its_public_api_files()
    {
        string[] libraries = Directory.GetFiles(Path.Combine(Root, "Runtime"), "*.csproj", SearchOption.AllDirectories);
        Assert.Equal(4, libraries.Length);
        foreach (string project in libraries)
        {
            foreach (string file in new[] { "PublicAPI.Shipped.txt", "PublicAPI.Unshipped.txt" })
            {
                string path = Path.Combine(Path.GetDirectoryName(project)!, file);
                Assert.True(File.Exists(path), $"{Path.GetFileName(project)} has no {file}");
                Assert.StartsWith("#nullable enable", File.ReadAllText(path), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void An_undeclared_public_symbol_fails_the_build_and_a_declared_one_does_not()
    {
        string folder = Path.Combine(Root, "Runtime", ".api-check-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "ApiCheck.csproj"), """
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <TargetFramework>net10.0</TargetFramework>
                  </PropertyGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(folder, "Api.cs"), "namespace ApiCheck;\n\npublic static class Api\n{\n    public static int Answer => 42;\n}\n");
            File.WriteAllText(Path.Combine(folder, "PublicAPI.Shipped.txt"), "#nullable enable\n");
            File.WriteAllText(Path.Combine(folder, "PublicAPI.Unshipped.txt"), "#nullable enable\n");

            CommandResult undeclared = Dotnet.Run(folder, null, TimeSpan.FromMinutes(4), "build", "ApiCheck.csproj", "-nologo");
            Assert.True(undeclared.ExitCode != 0, undeclared.ToString());
            Assert.Contains("RS0016", undeclared.Output, StringComparison.Ordinal);
            Assert.Contains("ApiCheck.Api.Answer", undeclared.Output, StringComparison.Ordinal);

            File.WriteAllText(Path.Combine(folder, "PublicAPI.Unshipped.txt"), "#nullable enable\nApiCheck.Api\nstatic ApiCheck.Api.Answer.get -> int\n");
            CommandResult declared = Dotnet.Run(folder, null, TimeSpan.FromMinutes(4), "build", "ApiCheck.csproj", "-nologo");
            Assert.True(declared.ExitCode == 0, declared.ToString());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
