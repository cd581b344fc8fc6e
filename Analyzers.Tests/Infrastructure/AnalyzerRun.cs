using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using SharedEntities.Generator;

namespace SharedEntities.Analyzers.Tests.Infrastructure;

/// <summary>
/// Compiles sources as a build would: the real generator runs first, then every analyzer of this project over the
/// result. Analyzer exceptions come back as AD0001 diagnostics (they are not thrown), so a test can assert there are none.
/// </summary>
internal static class AnalyzerRun
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Preview);

    public static ImmutableArray<DiagnosticAnalyzer> AllAnalyzers { get; } =
    [
        new SharedEntityDeclarationAnalyzer(),
        new FreshScopeAnalyzer(),
        new StaleSnapshotAnalyzer(),
    ];

    public static CSharpCompilation Compile(string assemblyName, IEnumerable<string> sources, IEnumerable<MetadataReference>? extraReferences = null)
        => CSharpCompilation.Create(
            assemblyName,
            sources.Select((source, i) => CSharpSyntaxTree.ParseText(source, ParseOptions, path: $"Source{i}.cs")),
            [.. TestReferences.All, .. extraReferences ?? []],
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));

    /// <summary>Runs the generator and returns the compilation that includes its output.</summary>
    public static Compilation Generate(CSharpCompilation compilation)
    {
        CSharpGeneratorDriver.Create([new SharedEntityGenerator().AsSourceGenerator()], parseOptions: ParseOptions)
            .RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out _);
        return output;
    }

    /// <summary>Compiler and analyzer diagnostics of the generated compilation, warnings and errors only.</summary>
    public static async Task<ImmutableArray<Diagnostic>> DiagnosticsAsync(
        string source,
        IEnumerable<MetadataReference>? extraReferences = null,
        ImmutableArray<DiagnosticAnalyzer>? analyzers = null)
    {
        Compilation compilation = Generate(Compile("Consumer", [source], extraReferences));
        ImmutableArray<Diagnostic> all = await compilation
            .WithAnalyzers(analyzers ?? AllAnalyzers, new CompilationWithAnalyzersOptions(
                new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: false, reportSuppressedDiagnostics: false))
            .GetAllDiagnosticsAsync(CancellationToken.None);
        return [.. all.Where(d => d.Severity >= DiagnosticSeverity.Warning).OrderBy(d => d.Location.SourceSpan.Start)];
    }

    /// <summary><c>ID@line</c> for each diagnostic (1-based lines), for compact assertions.</summary>
    public static string[] Summary(IEnumerable<Diagnostic> diagnostics)
        => [.. diagnostics.Select(d => $"{d.Id}@{d.Location.GetLineSpan().StartLinePosition.Line + 1}")];
}
