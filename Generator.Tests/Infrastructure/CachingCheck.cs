using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;

namespace SharedEntities.Generator.Tests.Infrastructure;

/// <summary>
/// The caching check every run of <see cref="GeneratorHarness.Run(IEnumerable{string}, CSharpParseOptions?)"/> goes
/// through: the driver runs again after edits that change no model, and every tracked step must be cached or
/// unchanged, the output step cached, and the generated text the same. So each shape and each broken source is also a
/// caching test, and a model that loses its equality fails wherever it is built.
/// </summary>
internal static class CachingCheck
{
    /// <summary>The tracking name Roslyn gives the step of <c>RegisterSourceOutput</c>.</summary>
    public const string OutputStep = "SourceOutput";

    /// <summary>The generator's own tracked steps, every constant of <see cref="TrackingNames"/>.</summary>
    public static readonly ImmutableArray<string> StepNames = typeof(TrackingNames)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(field => field.IsLiteral)
        .Select(field => (string)field.GetRawConstantValue()!)
        .ToImmutableArray();

    private const string UnrelatedSource = """
        namespace SharedEntities.Tests.Unrelated
        {
            internal static class Unrelated
            {
                public static int Value => 42;
            }
        }
        """;

    /// <summary>
    /// Reruns <paramref name="driver"/> (which has run on <paramref name="compilation"/>) twice: with an unrelated file
    /// added, then with a comment appended to every file as well (the declarations' trees change, their models do not).
    /// </summary>
    public static void AssertEditsRerunNothing(GeneratorDriver driver, Compilation compilation)
    {
        GeneratorDriverRunResult first = driver.GetRunResult();
        if (first.Results.Single().Exception is not null)
        {
            // The test reports the failure itself (CS8785 among the driver's diagnostics); there is no cache to check.
            return;
        }

        foreach (string name in StepNames)
        {
            if (first.Results[0].TrackedSteps.TryGetValue(name, out ImmutableArray<IncrementalGeneratorRunStep> steps))
            {
                foreach ((object value, _) in steps.SelectMany(step => step.Outputs))
                {
                    ModelGraph.AssertNoRoslynObjects(value, name);
                }
            }
        }

        CSharpParseOptions options = (CSharpParseOptions)compilation.SyntaxTrees.First().Options;
        Compilation withUnrelatedFile = compilation.AddSyntaxTrees(
            CSharpSyntaxTree.ParseText(UnrelatedSource, options, path: "Unrelated.cs"));
        driver = driver.RunGenerators(withUnrelatedFile);
        AssertCached(first, driver.GetRunResult(), "after adding an unrelated file");

        Compilation commented = withUnrelatedFile;
        foreach (SyntaxTree tree in compilation.SyntaxTrees)
        {
            string text = tree.GetText().ToString();
            commented = commented.ReplaceSyntaxTree(tree, tree.WithChangedText(SourceText.From(text + "\n// An edit that changes no model.\n")));
        }

        driver = driver.RunGenerators(commented);
        AssertCached(first, driver.GetRunResult(), "after adding a comment to every file");
    }

    /// <summary>
    /// Asserts that <paramref name="second"/> recomputed nothing of <paramref name="first"/>: the same number of outputs
    /// in every tracked step (and some, when the first run generated a file), each cached or unchanged.
    /// </summary>
    public static void AssertCached(GeneratorDriverRunResult first, GeneratorDriverRunResult second, string edit)
    {
        GeneratorRunResult before = first.Results.Single();
        GeneratorRunResult after = second.Results.Single();
        foreach (string name in StepNames)
        {
            AssertStep(name, Outputs(before.TrackedSteps, name), Outputs(after.TrackedSteps, name), before, edit,
                reason => reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged);
        }

        AssertStep(OutputStep, Outputs(before.TrackedOutputSteps, OutputStep), Outputs(after.TrackedOutputSteps, OutputStep), before, edit,
            reason => reason is IncrementalStepRunReason.Cached);
        Assert.Equal(
            before.GeneratedSources.Select(source => (source.HintName, source.SourceText.ToString())),
            after.GeneratedSources.Select(source => (source.HintName, source.SourceText.ToString())));
    }

    private static void AssertStep(
        string name,
        (object Value, IncrementalStepRunReason Reason)[] before,
        (object Value, IncrementalStepRunReason Reason)[] after,
        GeneratorRunResult firstRun,
        string edit,
        Func<IncrementalStepRunReason, bool> allowed)
    {
        // Assert.All passes on an empty collection: a run that generated a file must have something to check.
        Assert.True(firstRun.GeneratedSources.IsEmpty || after.Length > 0, $"Step {name} tracked no output {edit}.");
        Assert.True(before.Length == after.Length, $"Step {name} had {before.Length} outputs, then {after.Length} {edit}.");
        foreach ((object value, IncrementalStepRunReason reason) in after)
        {
            Assert.True(allowed(reason), $"Step {name} output {value} was {reason} {edit}.");
        }
    }

    private static (object Value, IncrementalStepRunReason Reason)[] Outputs(
        ImmutableDictionary<string, ImmutableArray<IncrementalGeneratorRunStep>> steps, string name)
        => steps.TryGetValue(name, out ImmutableArray<IncrementalGeneratorRunStep> found)
            ? found.SelectMany(step => step.Outputs).ToArray()
            : [];
}
