// Measures the SharedEntities analyzers' share of compiling a project, in process, on one thread:
//
//   dotnet run -c Release --project bench/analyzer-cost/AnalyzerCost -- <folder of .cs files> [iterations]
//
// Each iteration compiles the folder three times from a fresh compilation — generator, diagnostics, emit: without any
// analyzer; with a no-op analyzer that registers the same kinds of actions as ours (the analyzer driver and its
// operation trees, which a real build pays anyway for the SDK's own analyzers); and with the three SharedEntities
// analyzers. It records the process's CPU time for each (CPU time, not wall time: the machine is shared and wall time
// follows the other tenants' load). Medians over the iterations after a warm-up.
using System.Collections.Immutable;
using System.Diagnostics;
using Basic.Reference.Assemblies;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using SharedEntities.Analyzers;
using SharedEntities.Generator;

if (args.Length < 1 || !Directory.Exists(args[0]))
{
    Console.Error.WriteLine("usage: AnalyzerCost <folder of .cs files> [iterations]");
    return 2;
}

int iterations = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5;
var parseOptions = new CSharpParseOptions(LanguageVersion.Preview);
string[] files = [.. Directory.EnumerateFiles(args[0], "*.cs", SearchOption.AllDirectories)
    .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))];
const string ImplicitUsings = "global using System; global using System.Collections.Generic; global using System.IO; global using System.Linq; global using System.Net.Http; global using System.Threading; global using System.Threading.Tasks;";
SyntaxTree[] trees = [.. files.Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), parseOptions, f)),
    CSharpSyntaxTree.ParseText(ImplicitUsings, parseOptions, "GlobalUsings.g.cs")];
MetadataReference[] references = [.. Net100.References.All,
    MetadataReference.CreateFromFile(typeof(SharedEntities.Coherence).Assembly.Location),
    MetadataReference.CreateFromFile(typeof(Microsoft.Extensions.Logging.ILogger).Assembly.Location)];
var options = new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, concurrentBuild: false);
ImmutableArray<DiagnosticAnalyzer> analyzers = [new SharedEntityDeclarationAnalyzer(), new FreshScopeAnalyzer(), new StaleSnapshotAnalyzer()];

Console.WriteLine($"{files.Length} files; {iterations} iterations after one warm-up; single-threaded; CPU time");
ImmutableArray<DiagnosticAnalyzer> baseline = [new NoOpAnalyzer()];
var none = new List<double>();
var driver = new List<double>();
var ours = new List<double>();
for (int i = 0; i <= iterations; i++)
{
    double cpuNone = await CompileAsync([]);
    double cpuDriver = await CompileAsync(baseline);
    double cpuOurs = await CompileAsync(analyzers);
    if (i == 0)
    {
        continue; // warm-up: JIT and first-touch costs
    }

    none.Add(cpuNone);
    driver.Add(cpuDriver);
    ours.Add(cpuOurs);
    Console.WriteLine($"  iteration {i}: no analyzer {cpuNone:F2} s, no-op analyzer {cpuDriver:F2} s, SharedEntities analyzers {cpuOurs:F2} s");
}

double medianNone = Median(none), medianDriver = Median(driver), medianOurs = Median(ours);
Console.WriteLine($"median CPU: no analyzer {medianNone:F2} s; no-op analyzer {medianDriver:F2} s; SharedEntities analyzers {medianOurs:F2} s");
Console.WriteLine($"SharedEntities analyzers over the no-op analyzer (their own work): {(medianOurs - medianDriver) / medianOurs:P1} of the compile");
Console.WriteLine($"SharedEntities analyzers over no analyzer at all (their work plus the analyzer driver): {(medianOurs - medianNone) / medianOurs:P1}");
return 0;

async Task<double> CompileAsync(ImmutableArray<DiagnosticAnalyzer> withAnalyzers)
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
    TimeSpan start = Process.GetCurrentProcess().TotalProcessorTime;
    Compilation compilation = CSharpCompilation.Create("Consumer", trees, references, options);
    CSharpGeneratorDriver.Create([new SharedEntityGenerator().AsSourceGenerator()], parseOptions: parseOptions)
        .RunGeneratorsAndUpdateCompilation(compilation, out compilation, out _);
    ImmutableArray<Diagnostic> diagnostics;
    if (!withAnalyzers.IsEmpty)
    {
        diagnostics = await compilation
            .WithAnalyzers(withAnalyzers, new CompilationWithAnalyzersOptions(
                new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: false, reportSuppressedDiagnostics: false))
            .GetAllDiagnosticsAsync();
    }
    else
    {
        diagnostics = compilation.GetDiagnostics();
    }

    using var peStream = new MemoryStream();
    var result = compilation.Emit(peStream);
    if (!result.Success)
    {
        throw new InvalidOperationException(string.Join(Environment.NewLine, result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(10)));
    }

    GC.KeepAlive(diagnostics);
    return (Process.GetCurrentProcess().TotalProcessorTime - start).TotalSeconds;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
}

/// <summary>Registers the same kinds of actions as the SharedEntities analyzers, and does nothing in them.</summary>
#pragma warning disable RS1001, RS1036, RS1038, RS1041 // a measuring stick, passed to the compilation directly
internal sealed class NoOpAnalyzer : DiagnosticAnalyzer
#pragma warning restore RS1001, RS1036, RS1038, RS1041
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => [DiagnosticDescriptors.ReadOutsideScope];

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            start.RegisterSymbolAction(_ => { }, SymbolKind.NamedType);
            start.RegisterOperationAction(_ => { }, OperationKind.PropertyReference, OperationKind.Invocation, OperationKind.ObjectCreation);
            start.RegisterOperationBlockStartAction(block =>
            {
                block.RegisterOperationAction(_ => { }, OperationKind.Invocation, OperationKind.ObjectCreation);
                block.RegisterOperationBlockEndAction(_ => { });
            });
        });
    }
}
