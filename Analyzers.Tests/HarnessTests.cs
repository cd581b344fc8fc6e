using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using static SharedEntities.Analyzers.Tests.Infrastructure.AnalyzerRun;

namespace SharedEntities.Analyzers.Tests;

/// <summary>Checks of the test harness and of the analyzers' setup, so that the other tests can fail when they should.</summary>
public class HarnessTests
{
    /// <summary>An analyzer that throws shows up as AD0001, so the robustness theory can fail.</summary>
    [Fact]
    public async Task A_throwing_analyzer_is_reported_as_AD0001()
    {
        var diagnostics = await DiagnosticsAsync("class C { }", analyzers: [new ThrowingAnalyzer()]);

        Assert.Contains(diagnostics, d => d.Id == "AD0001");
    }

    [Fact]
    public async Task Nothing_runs_without_the_runtime_attribute()
    {
        var diagnostics = await DiagnosticsAsync("""
            namespace Other;
            [System.AttributeUsage(System.AttributeTargets.Class)] public sealed class SharedEntityAttribute : System.Attribute { }
            [SharedEntity] public class Sheet { public int Number { get; set; } }
            """);

        Assert.DoesNotContain(diagnostics, d => d.Id.StartsWith("SE", StringComparison.Ordinal));
    }

    // Passed to the compilation directly: no [DiagnosticAnalyzer] export, and its rule is not a shipped one.
#pragma warning disable RS1001 // deliberately not exported
    private sealed class ThrowingAnalyzer : DiagnosticAnalyzer
#pragma warning restore RS1001
    {
#pragma warning disable RS2008 // release tracking is for the shipped analyzers
        private static readonly DiagnosticDescriptor Rule = new("TEST0001", "t", "t", "t", DiagnosticSeverity.Warning, isEnabledByDefault: true);
#pragma warning restore RS2008

        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => [Rule];

        public override void Initialize(AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            context.EnableConcurrentExecution();
            context.RegisterSymbolAction(_ => throw new InvalidOperationException("boom"), SymbolKind.NamedType);
        }
    }
}
