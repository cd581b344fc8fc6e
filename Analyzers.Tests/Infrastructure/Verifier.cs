using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace SharedEntities.Analyzers.Tests.Infrastructure;

/// <summary>
/// Runs an analyzer (and a code fix) over markup sources with <c>{|SE0100:...|}</c> spans. Test sources compile
/// without the generator, so every partial property definition lacks its implementation part and the compiler reports
/// CS9248. That error says nothing about the rules under test, so it is filtered out (<see cref="IgnoredCompilerIds"/>);
/// every other compiler error still fails the test, so a typo cannot make a test pass vacuously. Tests that need the
/// real generated parts add them as sources named like the generator's output (see <see cref="GeneratedPath"/>).
/// </summary>
internal static class Verifier
{
    /// <summary>CS9248: partial property must have an implementation part (the generator's job, absent here).</summary>
    public static readonly string[] IgnoredCompilerIds = ["CS9248"];

    /// <summary>A path like the generator's output, which the shape file recognises as its implementation part.</summary>
    public const string GeneratedPath = "SharedEntities.Generator/SharedEntities.Generator.SharedEntityGenerator/Generated.g.cs";

    public static Task AnalyzeAsync<TAnalyzer>(string source, params DiagnosticResult[] expected)
        where TAnalyzer : DiagnosticAnalyzer, new()
    {
        var test = new SharedAnalyzerTest<TAnalyzer> { TestCode = source };
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync(CancellationToken.None);
    }

    public static Task FixAsync<TAnalyzer, TFix>(string source, string fixedSource, int? codeActionIndex = null, string? equivalenceKey = null)
        where TAnalyzer : DiagnosticAnalyzer, new()
        where TFix : CodeFixProvider, new()
    {
        var test = new SharedFixTest<TAnalyzer, TFix>
        {
            TestCode = source,
            FixedCode = fixedSource,
            CodeActionIndex = codeActionIndex,
            CodeActionEquivalenceKey = equivalenceKey,
        };
        return test.RunAsync(CancellationToken.None);
    }

    internal static void Configure(SolutionState state) => state.AdditionalReferences.AddRange(TestReferences.All);

    internal static bool IsIgnored(Diagnostic diagnostic) => Array.IndexOf(IgnoredCompilerIds, diagnostic.Id) >= 0;

    internal static Solution UseLatestLanguage(Solution solution, ProjectId projectId)
    {
        Project project = solution.GetProject(projectId)!;
        var parseOptions = (CSharpParseOptions)project.ParseOptions!;
        var compilationOptions = (CSharpCompilationOptions)project.CompilationOptions!;
        return solution
            .WithProjectParseOptions(projectId, parseOptions.WithLanguageVersion(LanguageVersion.Preview))
            .WithProjectCompilationOptions(projectId, compilationOptions.WithNullableContextOptions(NullableContextOptions.Enable));
    }

    internal sealed class SharedAnalyzerTest<TAnalyzer> : CSharpAnalyzerTest<TAnalyzer, DefaultVerifier>
        where TAnalyzer : DiagnosticAnalyzer, new()
    {
        public SharedAnalyzerTest()
        {
            ReferenceAssemblies = TestReferences.None;
            Configure(TestState);
            SolutionTransforms.Add(UseLatestLanguage);
        }

        protected override bool IsCompilerDiagnosticIncluded(Diagnostic diagnostic, CompilerDiagnostics compilerDiagnostics)
            => !IsIgnored(diagnostic) && base.IsCompilerDiagnosticIncluded(diagnostic, compilerDiagnostics);
    }

    internal sealed class SharedFixTest<TAnalyzer, TFix> : CSharpCodeFixTest<TAnalyzer, TFix, DefaultVerifier>
        where TAnalyzer : DiagnosticAnalyzer, new()
        where TFix : CodeFixProvider, new()
    {
        public SharedFixTest()
        {
            ReferenceAssemblies = TestReferences.None;
            Configure(TestState);
            SolutionTransforms.Add(UseLatestLanguage);
        }

        protected override bool IsCompilerDiagnosticIncluded(Diagnostic diagnostic, CompilerDiagnostics compilerDiagnostics)
            => !IsIgnored(diagnostic) && base.IsCompilerDiagnosticIncluded(diagnostic, compilerDiagnostics);
    }
}
