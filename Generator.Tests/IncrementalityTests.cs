using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using SharedEntities.Generator.Tests.Infrastructure;

namespace SharedEntities.Generator.Tests;

/// <summary>
/// The generator is incremental: an edit that does not change a model reruns no output. Each test runs the driver
/// twice and checks every tracked step. (Every <see cref="GeneratorHarness.Run(IEnumerable{string}, CSharpParseOptions?)"/>
/// also makes two such edits, through <see cref="CachingCheck"/>; these tests add edits inside the files and ones that
/// must change the output.)
/// </summary>
public sealed class IncrementalityTests
{
    private const string OutputStep = CachingCheck.OutputStep;

    private const string Entity = """
        using System;
        using SharedEntities;

        namespace Demo;

        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public long Version { get; set; }
            public partial string Title { get; set; }
            public partial DateTime LastModified { get; set; }

            public string Describe() => "sheet";
        }

        [SharedEntity]
        public partial class Note
        {
            public Guid Id { get; set; }
            public partial string Text { get; set; }
        }

        [SharedEntity]
        public partial class Draft
        {
            public partial string Text { get; set; }
        }

        [SharedEntity]
        public class NotPartial
        {
            public int Id { get; set; }
        }
        """;

    private const string Other = """
        namespace Demo;

        public static class Calculator
        {
            public static int Add(int a, int b) => a + b;
        }
        """;

    private static readonly ImmutableArray<string> StepNames = CachingCheck.StepNames;

    [Fact]
    public void Adding_an_unrelated_file_reruns_nothing()
    {
        (GeneratorDriverRunResult first, GeneratorDriverRunResult second) = RunTwice(
            compilation => compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
                "namespace Demo.Other; public class Unrelated { public int Value { get; set; } }",
                GeneratorHarness.CSharp13,
                path: "Unrelated.cs")));

        AssertAllCached(first, second);
    }

    [Fact]
    public void Editing_a_method_body_in_another_file_reruns_nothing()
    {
        (GeneratorDriverRunResult first, GeneratorDriverRunResult second) = RunTwice(
            compilation => ReplaceText(compilation, "Other.cs", "a + b", "b + a"));

        AssertAllCached(first, second);
    }

    [Fact]
    public void Editing_a_method_body_of_the_entity_itself_reruns_no_output()
    {
        // The entity's tree changes, so its transform reruns; the model it builds is equal, so the output does not.
        (GeneratorDriverRunResult first, GeneratorDriverRunResult second) = RunTwice(
            compilation => ReplaceText(compilation, "Entity.cs", "\"sheet\"", "\"a sheet\""));

        AssertAllCached(first, second);
    }

    [Fact]
    public void Renaming_a_shared_property_modifies_the_output()
    {
        // Proves that the checks above can fail: a relevant edit must show up as a modified model and output.
        (_, GeneratorDriverRunResult second) = RunTwice(
            compilation => ReplaceText(compilation, "Entity.cs", "partial string Title", "partial string Caption"));

        IncrementalGeneratorRunStep[] extract = second.Results[0].TrackedSteps[TrackingNames.Extract].ToArray();
        Assert.Contains(extract.SelectMany(step => step.Outputs), output => output.Reason == IncrementalStepRunReason.Modified);
        IncrementalGeneratorRunStep[] outputs = second.Results[0].TrackedOutputSteps[OutputStep].ToArray();
        Assert.Contains(outputs.SelectMany(step => step.Outputs), output => output.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains(second.Results[0].GeneratedSources, source => source.SourceText.ToString().Contains("__shared_Caption", StringComparison.Ordinal));
    }

    [Fact]
    public void Adding_a_shared_property_in_another_part_regenerates_the_type()
    {
        // The attribute sits in one file, the new property in another: the type's model must still change.
        string[] sources = Shapes.Get("SeveralParts").Sources;
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(sources);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        Compilation edited = ReplaceText(compilation, "Source1.cs", "public partial int Rows { get; set; }", "public partial int Rows { get; set; } public partial int Columns { get; set; }");
        GeneratorDriverRunResult second = driver.RunGenerators(edited).GetRunResult();

        var outputs = second.Results[0].TrackedOutputSteps[OutputStep].SelectMany(step => step.Outputs).ToArray();
        Assert.Contains(outputs, output => output.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains("__shared_Columns", Assert.Single(second.Results[0].GeneratedSources).SourceText.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Models_reach_no_compilation_symbol_or_syntax()
    {
        (GeneratorDriverRunResult first, _) = RunTwice(compilation => compilation);
        int models = 0;
        foreach (string name in StepNames)
        {
            foreach (IncrementalGeneratorRunStep step in first.Results[0].TrackedSteps[name])
            {
                foreach ((object value, _) in step.Outputs)
                {
                    ModelGraph.AssertNoRoslynObjects(value, name);
                    models++;
                }
            }
        }

        Assert.True(models >= StepNames.Length, "The tracked steps produced no model to inspect.");
    }

    [Fact]
    public void Every_step_has_a_tracking_name()
    {
        (GeneratorDriverRunResult first, _) = RunTwice(compilation => compilation);
        Assert.NotEmpty(StepNames);
        foreach (string name in StepNames)
        {
            Assert.True(first.Results[0].TrackedSteps.ContainsKey(name), $"No step is tracked as {name}.");
        }
    }

    private static (GeneratorDriverRunResult First, GeneratorDriverRunResult Second) RunTwice(Func<Compilation, Compilation> edit)
    {
        CSharpCompilation compilation = CSharpCompilation.Create(
            "SharedEntities.UserCode",
            [
                CSharpSyntaxTree.ParseText(Entity, GeneratorHarness.CSharp13, path: "Entity.cs"),
                CSharpSyntaxTree.ParseText(Other, GeneratorHarness.CSharp13, path: "Other.cs"),
            ],
            GeneratorHarness.References,
            GeneratorHarness.CompilationOptions);

        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        GeneratorDriverRunResult first = driver.GetRunResult();
        Assert.Equal(3, first.Results[0].GeneratedSources.Length);

        driver = driver.RunGenerators(edit(compilation));
        return (first, driver.GetRunResult());
    }

    private static Compilation ReplaceText(Compilation compilation, string path, string oldText, string newText)
    {
        SyntaxTree tree = compilation.SyntaxTrees.Single(t => t.FilePath == path);
        string text = tree.GetText().ToString();
        Assert.Contains(oldText, text, StringComparison.Ordinal);
        SyntaxTree edited = tree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(text.Replace(oldText, newText, StringComparison.Ordinal)));
        return compilation.ReplaceSyntaxTree(tree, edited);
    }

    private static void AssertAllCached(GeneratorDriverRunResult first, GeneratorDriverRunResult second)
        => CachingCheck.AssertCached(first, second, "after the edit");
}
