using System.Globalization;
using System.Text.RegularExpressions;

namespace SharedEntities.Package.Tests;

/// <summary>
/// Every C# block of the README and of the package readmes compiles, as written, against the packed packages with
/// warnings as errors. A block is a file of its own (declarations, with its usings), unless the line before it says
/// <c>&lt;!-- compile: statements(parameters) --&gt;</c>: then it is the body of an async method with those parameters,
/// and the usings of <see cref="StatementUsings"/> apply. Errors point at the document's own lines.
/// </summary>
[Collection(PackedPackagesGroup.Name)]
public sealed partial class ReadmeTests(PackedPackages packages)
{
    private static readonly string[] StatementUsings =
    [
        "Microsoft.Data.Sqlite",
        "Microsoft.EntityFrameworkCore",
        "Microsoft.Extensions.DependencyInjection",
        "Microsoft.Extensions.Logging",
        "SharedEntities",
        "SharedEntities.AdoNet",
        "SharedEntities.EntityFrameworkCore",
        "SharedEntities.Memcached",
        "SharedEntities.Sqlite",
    ];

    [Theory]
    [InlineData("README.md", 6)]
    [InlineData("nuget/SharedEntities.md", 1)]
    [InlineData("nuget/SharedEntities.Memcached.md", 1)]
    [InlineData("nuget/SharedEntities.Sqlite.md", 1)]
    [InlineData("nuget/SharedEntities.EntityFrameworkCore.md", 1)]
    public void Every_csharp_block_compiles(string document, int minimumBlocks)
    {
        string path = Path.Combine(packages.RepositoryRoot, document);
        IReadOnlyList<CodeBlock> blocks = CodeBlock.Read(File.ReadAllLines(path));
        Assert.True(blocks.Count >= minimumBlocks, $"{document} has {blocks.Count} C# block(s); expected at least {minimumBlocks}.");

        string consumers = packages.CopyConsumers();
        string project = Directory.CreateDirectory(Path.Combine(consumers, "Documentation")).FullName;
        File.WriteAllText(Path.Combine(project, "Documentation.csproj"), ProjectFile);
        File.WriteAllText(Path.Combine(project, "StatementUsings.cs"), string.Concat(StatementUsings.Select(u => $"global using {u};\n")));
        for (int i = 0; i < blocks.Count; i++)
        {
            File.WriteAllText(Path.Combine(project, $"Block{i + 1}.cs"), blocks[i].ToSource($"Block{i + 1}", path));
        }

        CommandResult build = packages.Build(consumers, "Documentation/Documentation.csproj");
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.DoesNotMatch(@": warning [A-Z]+\d+:", build.Output);
    }

    [Fact]
    public void Blocks_are_read_with_their_markers_and_lines()
    {
        string[] lines =
        [
            "text",
            "```csharp",
            "class A { }",
            "```",
            "<!-- compile: statements(int id, string name) -->",
            "```csharp",
            "Console.WriteLine(id);",
            "```",
            "```bash",
            "echo not C#",
            "```",
        ];

        IReadOnlyList<CodeBlock> blocks = CodeBlock.Read(lines);

        Assert.Equal(2, blocks.Count);
        Assert.Null(blocks[0].Parameters);
        Assert.Equal(3, blocks[0].FirstLine);
        Assert.Equal("int id, string name", blocks[1].Parameters);
        string source = blocks[1].ToSource("Block2", "/docs/README.md");
        Assert.Contains("public static async Task RunAsync(int id, string name)", source, StringComparison.Ordinal);
        Assert.Contains("#line 7 \"/docs/README.md\"", source, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unclosed_block_is_an_error()
    {
        var refused = Assert.Throws<InvalidDataException>(() => CodeBlock.Read(["```csharp", "class A { }"]));
        Assert.Contains("line 1", refused.Message, StringComparison.Ordinal);
    }

    private const string ProjectFile = """
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <TargetFramework>net10.0</TargetFramework>
            <Nullable>enable</Nullable>
            <ImplicitUsings>enable</ImplicitUsings>
            <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
            <!-- A statement block need not await; the SQLite provider asks for a SQLitePCLRaw some registries lack. -->
            <NoWarn>$(NoWarn);CS1998;NU1603</NoWarn>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="SharedEntities" Version="$(SharedEntitiesVersion)" />
            <PackageReference Include="SharedEntities.Memcached" Version="$(SharedEntitiesVersion)" />
            <PackageReference Include="SharedEntities.Sqlite" Version="$(SharedEntitiesVersion)" />
            <PackageReference Include="SharedEntities.EntityFrameworkCore" Version="$(SharedEntitiesVersion)" />
            <PackageReference Include="Microsoft.EntityFrameworkCore.Sqlite" Version="10.0.0" />
            <PackageReference Include="Microsoft.Extensions.DependencyInjection" Version="10.0.0" />
            <PackageReference Include="Microsoft.Extensions.Diagnostics" Version="10.0.0" />
            <PackageReference Include="Microsoft.Extensions.Logging.Console" Version="10.0.0" />
          </ItemGroup>
        </Project>
        """;

    /// <summary>A fenced C# block of a Markdown document.</summary>
    internal sealed partial record CodeBlock(int FirstLine, string Code, string? Parameters)
    {
        public static IReadOnlyList<CodeBlock> Read(IReadOnlyList<string> lines)
        {
            var blocks = new List<CodeBlock>();
            for (int i = 0; i < lines.Count; i++)
            {
                if (!lines[i].StartsWith("```", StringComparison.Ordinal))
                {
                    continue;
                }

                int open = i;
                int close = open + 1;
                while (close < lines.Count && !lines[close].StartsWith("```", StringComparison.Ordinal))
                {
                    close++;
                }

                if (close == lines.Count)
                {
                    throw new InvalidDataException($"The code block opened on line {open + 1} is never closed.");
                }

                if (lines[open].Trim() == "```csharp")
                {
                    Match marker = open > 0 ? Marker().Match(lines[open - 1]) : Match.Empty;
                    string code = string.Join('\n', lines.Skip(open + 1).Take(close - open - 1));
                    blocks.Add(new CodeBlock(open + 2, code, marker.Success ? marker.Groups["parameters"].Value : null));
                }

                i = close;
            }

            return blocks;
        }

        public string ToSource(string name, string documentPath)
        {
            string located = "#line " + FirstLine.ToString(CultureInfo.InvariantCulture) + " \"" + documentPath + "\"\n" + Code + "\n";
            return Parameters is null
                ? located
                : "internal static class " + name + "\n{\n    public static async Task RunAsync(" + Parameters + ")\n    {\n"
                    + located + "#line default\n    }\n}\n";
        }

        [GeneratedRegex(@"^<!--\s*compile:\s*statements\((?<parameters>[^)]*)\)\s*-->\s*$")]
        private static partial Regex Marker();
    }
}
