using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace SharedEntities.Analyzers.Tests.Infrastructure;

/// <summary>An <see cref="AnalysisContext"/> that records how an analyzer configures itself.</summary>
internal sealed class RecordingContext : AnalysisContext
{
    public bool Concurrent { get; private set; }

    public GeneratedCodeAnalysisFlags? GeneratedCode { get; private set; }

    public int CompilationStartActions { get; private set; }

    public int OtherActions { get; private set; }

    public override void EnableConcurrentExecution() => Concurrent = true;

    public override void ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags analysisMode) => GeneratedCode = analysisMode;

    public override void RegisterCompilationStartAction(Action<CompilationStartAnalysisContext> action) => CompilationStartActions++;

    public override void RegisterCompilationAction(Action<CompilationAnalysisContext> action) => OtherActions++;

    public override void RegisterSemanticModelAction(Action<SemanticModelAnalysisContext> action) => OtherActions++;

    public override void RegisterSymbolAction(Action<SymbolAnalysisContext> action, ImmutableArray<SymbolKind> symbolKinds) => OtherActions++;

    public override void RegisterCodeBlockStartAction<TLanguageKindEnum>(Action<CodeBlockStartAnalysisContext<TLanguageKindEnum>> action) => OtherActions++;

    public override void RegisterCodeBlockAction(Action<CodeBlockAnalysisContext> action) => OtherActions++;

    public override void RegisterSyntaxTreeAction(Action<SyntaxTreeAnalysisContext> action) => OtherActions++;

    public override void RegisterSyntaxNodeAction<TLanguageKindEnum>(Action<SyntaxNodeAnalysisContext> action, ImmutableArray<TLanguageKindEnum> syntaxKinds) => OtherActions++;
}
