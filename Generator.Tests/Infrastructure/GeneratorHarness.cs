using System.Collections.Immutable;
using Basic.Reference.Assemblies;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using SharedEntities.Generator;

namespace SharedEntities.Generator.Tests.Infrastructure;

/// <summary>Builds compilations against .NET 10 reference assemblies and the runtime, and runs the generator on them.</summary>
internal static class GeneratorHarness
{
    /// <summary>The oldest language version the generator supports (partial properties).</summary>
    public static readonly CSharpParseOptions CSharp13 = new(LanguageVersion.CSharp13, DocumentationMode.Parse);

    /// <summary>The newest the compiler knows.</summary>
    public static readonly CSharpParseOptions Preview = new(LanguageVersion.Preview, DocumentationMode.Parse);

    public static readonly ImmutableArray<MetadataReference> References =
    [
        .. Net100.References.All,
        MetadataReference.CreateFromFile(typeof(SharedEntityAttribute).Assembly.Location),
    ];

    /// <summary>Nullable enabled and every warning an error, as in a project with TreatWarningsAsErrors.</summary>
    public static readonly CSharpCompilationOptions CompilationOptions = new CSharpCompilationOptions(
            OutputKind.DynamicallyLinkedLibrary,
            nullableContextOptions: NullableContextOptions.Enable,
            generalDiagnosticOption: ReportDiagnostic.Error)
        .WithSpecificDiagnosticOptions(new Dictionary<string, ReportDiagnostic>
        {
            // The SDK suppresses these assembly-unification notices by default; so do we.
            ["CS1701"] = ReportDiagnostic.Suppress,
            ["CS1702"] = ReportDiagnostic.Suppress,
        });

    public static CSharpCompilation CreateCompilation(IEnumerable<string> sources, CSharpParseOptions? options = null)
    {
        options ??= CSharp13;
        SyntaxTree[] trees = sources
            .Select((source, i) => CSharpSyntaxTree.ParseText(source, options, path: $"Source{i}.cs"))
            .ToArray();
        return CSharpCompilation.Create("SharedEntities.UserCode", trees, References, CompilationOptions);
    }

    public static CSharpCompilation CreateCompilation(string source, CSharpParseOptions? options = null)
        => CreateCompilation([source], options);

    public static GeneratorDriver CreateDriver(CSharpParseOptions? options = null)
        => CSharpGeneratorDriver.Create(
            [new SharedEntityGenerator().AsSourceGenerator()],
            parseOptions: options ?? CSharp13,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>
    /// Runs the generator; returns its result and the compilation that includes the generated files. Before returning,
    /// reruns it after edits that change no model and asserts that nothing was recomputed (<see cref="CachingCheck"/>).
    /// </summary>
    public static GeneratorRun Run(IEnumerable<string> sources, CSharpParseOptions? options = null)
    {
        CSharpCompilation compilation = CreateCompilation(sources, options);
        GeneratorDriver driver = CreateDriver(options).RunGeneratorsAndUpdateCompilation(
            compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        CachingCheck.AssertEditsRerunNothing(driver, compilation);
        return new GeneratorRun(compilation, output, driver.GetRunResult(), diagnostics);
    }

    public static GeneratorRun Run(string source, CSharpParseOptions? options = null) => Run([source], options);

    public static string Format(IEnumerable<Diagnostic> diagnostics)
        => string.Join(Environment.NewLine, diagnostics.Select(d => d.ToString()));
}

/// <summary>One run of the generator.</summary>
internal sealed record GeneratorRun(
    Compilation Input,
    Compilation Output,
    GeneratorDriverRunResult Result,
    ImmutableArray<Diagnostic> DriverDiagnostics)
{
    public ImmutableArray<GeneratedSourceResult> GeneratedSources => Result.Results.Single().GeneratedSources;

    /// <summary>Diagnostics of warning severity or above in the compilation that includes the generated code.</summary>
    public IReadOnlyList<Diagnostic> OutputProblems => Output.GetDiagnostics()
        .Where(d => d.Severity >= DiagnosticSeverity.Warning)
        .ToList();
}
