using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using SharedEntities.Generator.Tests.Infrastructure;

namespace SharedEntities.Generator.Tests;

/// <summary>What the generator writes for every shape: the text (snapshots) and that it compiles without a warning.</summary>
public sealed class GeneratedCodeTests
{
    public static TheoryData<string> ShapeNames => Shapes.Names;

    [Theory]
    [MemberData(nameof(ShapeNames))]
    public void Snapshot_matches(string shapeName)
    {
        Shape shape = Shapes.Get(shapeName);
        GeneratorRun run = GeneratorHarness.Run(shape.Sources);

        Assert.Empty(run.DriverDiagnostics);
        foreach (var source in run.GeneratedSources)
        {
            Snapshot.Verify($"{shape.Name}.{source.HintName[..^".g.cs".Length]}", source.SourceText.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(ShapeNames))]
    public void Output_compiles_without_warnings_in_CSharp13(string shapeName)
        => AssertCompiles(Shapes.Get(shapeName), GeneratorHarness.CSharp13);

    [Theory]
    [MemberData(nameof(ShapeNames))]
    public void Output_compiles_without_warnings_in_preview(string shapeName)
        => AssertCompiles(Shapes.Get(shapeName), GeneratorHarness.Preview);

    [Fact]
    public void Every_shape_has_its_snapshots_and_no_stale_ones()
    {
        // A renamed or removed shape must not leave an orphaned verified file behind.
        HashSet<string> expected = [];
        foreach (Shape shape in Shapes.All)
        {
            foreach (var source in GeneratorHarness.Run(shape.Sources).GeneratedSources)
            {
                expected.Add($"{shape.Name}.{source.HintName[..^".g.cs".Length]}.verified.cs");
            }
        }

        string[] actual = Directory.GetFiles(Snapshot.SnapshotDirectory, "*.verified.cs").Select(path => Path.GetFileName(path)).ToArray();
        Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("NotPartial")]
    [InlineData("NotPartialWithPartialProperty")]
    [InlineData("ContainingTypeNotPartial")]
    public void Nothing_is_generated_when_no_part_can_be_added(string shapeName)
        => Assert.Empty(GeneratorHarness.Run(Shapes.Get(shapeName).Sources).GeneratedSources);

    [Fact]
    public void A_type_in_several_parts_gets_one_file()
    {
        GeneratorRun run = GeneratorHarness.Run(Shapes.Get("SeveralParts").Sources);
        var source = Assert.Single(run.GeneratedSources);
        Assert.Equal("Demo.Sheet.g.cs", source.HintName);
    }

    [Fact]
    public void Documented_output_passes_documentation_diagnostics()
    {
        // DocumentationMode.Diagnose reports missing or malformed XML docs (CS1591, CS1574…), as GenerateDocumentationFile does.
        Shape shape = Shapes.Get("DocComments");
        CSharpParseOptions options = GeneratorHarness.CSharp13.WithDocumentationMode(DocumentationMode.Diagnose);
        GeneratorRun run = GeneratorHarness.Run(shape.Sources, options);
        Assert.True(run.OutputProblems.Count == 0, GeneratorHarness.Format(run.OutputProblems));
    }

    [Fact]
    public void Application_code_that_uses_the_members_for_generated_code_gets_SE9100()
    {
        // The generated part of Sheet uses them without a warning; the same uses in the application's own code warn.
        GeneratorRun run = GeneratorHarness.Run("""
            using SharedEntities;
            namespace Demo;
            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }
            public static class Misuse
            {
                public static object? State(ISharedEntity entity) => (SharedEntities.Internals.SharedEntityState?)entity.SharedState;
                public static SharedEntityType Type() => new("Sheet", typeof(Sheet), "Id", null, []);
            }
            """);

        Diagnostic[] warnings = [.. run.OutputProblems.Where(d => d.Id == "SE9100")];
        Assert.True(warnings.Select(d => d.Location.GetLineSpan().StartLinePosition.Line).Distinct().Count() == 2, GeneratorHarness.Format(run.OutputProblems));
        Assert.All(warnings, d => Assert.DoesNotContain(run.GeneratedSources, s => s.SyntaxTree == d.Location.SourceTree));
        Assert.All(warnings, d => Assert.Contains("For the code the SharedEntities generator writes", d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
    }

    private static void AssertCompiles(Shape shape, CSharpParseOptions options)
    {
        GeneratorRun run = GeneratorHarness.Run(shape.Sources, options);
        Assert.Empty(run.DriverDiagnostics);

        // Nothing at all in generated files; in the user's files, only the errors the shape has by itself.
        List<Diagnostic> inGenerated = run.OutputProblems
            .Where(d => run.GeneratedSources.Any(s => s.SyntaxTree == d.Location.SourceTree))
            .ToList();
        Assert.True(inGenerated.Count == 0, "Generated code has diagnostics:\n" + GeneratorHarness.Format(inGenerated));

        string[] inUserCode = run.OutputProblems.Except(inGenerated).Select(d => d.Id).Distinct().Order(StringComparer.Ordinal).ToArray();
        Assert.True(
            inUserCode.SequenceEqual(shape.UserErrors),
            $"Expected [{string.Join(", ", shape.UserErrors)}] in user code, got:\n" + GeneratorHarness.Format(run.OutputProblems));
    }
}
