using Microsoft.CodeAnalysis;
using SharedEntities.Analyzers.Tests.Infrastructure;
using static SharedEntities.Analyzers.Tests.Infrastructure.AnalyzerRun;

namespace SharedEntities.Analyzers.Tests;

/// <summary>The analyzers over what a build compiles: user code plus the real generator's output.</summary>
public class EndToEndTests
{
    private const string Entity = """
        using System;
        using System.Threading.Tasks;
        using SharedEntities;

        namespace Demo;

        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public long Version { get; set; }
            public partial string Title { get; set; }
            public partial DateTime LastModified { get; set; }
            public string LocalNote { get; set; } = "";
        }

        """;

    [Fact]
    public async Task With_generated_parts_a_valid_program_gets_only_the_usage_warnings()
    {
        var diagnostics = await DiagnosticsAsync(Entity + """
            public class Service(Coherence coherence)
            {
                public async Task<string> InsideAsync(Sheet sheet)
                {
                    await using var scope = coherence.BeginScope();
                    sheet.Title = "Q3";
                    await scope.CommitAsync();
                    return sheet.Title;
                }

                public string Outside(Sheet sheet) => sheet.Title;

                public void Write(Sheet sheet) => sheet.LastModified = DateTime.UtcNow;
            }
            """);

        Assert.Equal(["SE0100@26", "SE0103@28"], Summary(diagnostics));
    }

    [Fact]
    public async Task Shared_properties_of_an_entity_from_a_referenced_assembly_are_recognised()
    {
        Compilation library = Generate(Compile("Domain", [Entity]));
        using var stream = new MemoryStream();
        var emitted = library.Emit(stream);
        Assert.True(emitted.Success, string.Join(Environment.NewLine, emitted.Diagnostics));
        MetadataReference domain = MetadataReference.CreateFromImage(stream.ToArray());

        var diagnostics = await DiagnosticsAsync("""
            using Demo;
            using SharedEntities;

            public class Consumer
            {
                public string Read(Sheet sheet) => sheet.Title + sheet.LocalNote + sheet.Id + sheet.Version;

                public string Inside(Coherence coherence, Sheet sheet)
                {
                    using var scope = coherence.BeginScope();
                    return sheet.Title;
                }
            }
            """, [domain]);

        Assert.Equal(["SE0100@6"], Summary(diagnostics));
    }

    /// <summary>
    /// The generator serves what it can (plain implementations for a declaration it cannot share), so the only other
    /// errors are the compiler's own: a partial member in a non-partial type (CS0751) has nowhere a part could go (CS9248).
    /// </summary>
    [Theory]
    [InlineData("public class Sheet { public int Id { get; set; } public partial string Title { get; set; } }", "SE0001", "CS0751", "CS9248")]
    [InlineData("public partial class Sheet { public int Number { get; set; } public partial string Title { get; set; } }", "SE0003")]
    [InlineData("public partial class Sheet { public partial int Id { get; set; } public partial string Title { get; set; } }", "SE0006")]
    [InlineData("public partial class Sheet { public int Id { get; set; } public static partial string Title { get; set; } }", "SE0004")]
    [InlineData("public static partial class Sheet { }", "SE0005")]
    [InlineData("public partial record Sheet(int Id) { public partial string Title { get; set; } }", "SE0005")]
    public async Task A_broken_declaration_shows_its_SE_error_and_no_cascade(string declaration, string id, params string[] compilerErrors)
    {
        var diagnostics = await DiagnosticsAsync("using SharedEntities;\n[SharedEntity]\n" + declaration);

        string[] expected = [id, .. compilerErrors];
        Assert.Equal(expected.Order(), diagnostics.Select(d => d.Id).Distinct().Order());
    }
}
