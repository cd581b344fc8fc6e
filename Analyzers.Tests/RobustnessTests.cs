using SharedEntities.Analyzers.Tests.Infrastructure;
using static SharedEntities.Analyzers.Tests.Infrastructure.AnalyzerRun;

namespace SharedEntities.Analyzers.Tests;

/// <summary>Every analyzer over broken and half-typed sources, as the IDE runs them while the user types: no exception (AD0001).</summary>
public class RobustnessTests
{
    public static TheoryData<string> BrokenSources { get; } = new()
    {
        // half-typed attribute and class
        "using SharedEntities; [SharedEntity(",
        "using SharedEntities; [SharedEntity] public partial class",
        "using SharedEntities; [SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get",
        // unresolved types everywhere
        "using SharedEntities; [SharedEntity] public partial class Sheet : Missing { public Unknown Id { get; set; } public partial Nope Title { get; set; } }",
        // attribute arguments of the wrong kind
        "using SharedEntities; [SharedEntity(Name = 42)] public partial class Sheet { public int Id { get; set; } } [SharedEntity(Nam = \"x\")] public partial class B { public int Id { get; set; } }",
        // duplicate types and members
        "using SharedEntities; [SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } public partial string Title { get; set; } } [SharedEntity] public partial class Sheet { }",
        // usage with broken scopes and lambdas
        "using SharedEntities; class C { void M(Coherence c, object s) { using var scope = c.BeginScope(; var x = s.; c.RunInScopeAsync((a, b) => ); } }",
        "using SharedEntities; class C { async System.Threading.Tasks.Task M(Coherence c) { await using (var s = c.BeginScope()) { await foreach (var x in ) { } } } }",
        // transactions with missing arguments and unknown types
        "using System.Data; using System.Data.Common; class C { void M(DbConnection c, SharedEntities.FreshScope s) { using var t = c.BeginTransaction(IsolationLevel.; s.Check(; t.Commit( } }",
        "using System.Transactions; class C { void M(SharedEntities.FreshScope s) { using var t = new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = }); s.Check(); } }",
        // generic, nested and recursive shapes
        "using SharedEntities; public partial class O<T> { [SharedEntity] public partial class Sheet<U> : Sheet<U> { public U Id { get; set; } public partial T Title { get; set; } } }",
        // attribute on odd targets, top-level statements, local functions with attributes
        "using SharedEntities; [SharedEntity] enum E { A } [SharedEntity] delegate void D(); var x = 1; [RequiresFreshScope] void L() { } L(); [SharedEntity] interface I { }",
        // a shared property used in every odd position
        "using SharedEntities; [SharedEntity] public partial class S { public int Id { get; set; } public partial int N { get; set; } } class C { int M(S s) => s switch { { N: > 1 } => s.N++ + (s.N += 1) + (s?.N ?? 0) + nameof(s.N).Length, _ => throw null!, }; }",
    };

    [Theory]
    [MemberData(nameof(BrokenSources))]
    public async Task No_analyzer_throws(string source)
    {
        var diagnostics = await DiagnosticsAsync(source);

        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    [Fact]
    public void Analyzers_run_concurrently_skip_generated_code_and_start_per_compilation()
    {
        foreach (var analyzer in AllAnalyzers)
        {
            var context = new RecordingContext();
            analyzer.Initialize(context);
            Assert.True(context.Concurrent, analyzer.GetType().Name);
            Assert.Equal(Microsoft.CodeAnalysis.Diagnostics.GeneratedCodeAnalysisFlags.None, context.GeneratedCode);
            // Everything is registered at compilation start, after the marker symbols are resolved once.
            Assert.Equal(1, context.CompilationStartActions);
            Assert.Equal(0, context.OtherActions);
        }
    }
}
