using Microsoft.CodeAnalysis.Testing;
using SharedEntities.Analyzers.Tests.Infrastructure;
using static SharedEntities.Analyzers.Tests.Infrastructure.Verifier;

namespace SharedEntities.Analyzers.Tests;

/// <summary>SE0100, SE0102 and SE0103: what counts as inside a fresh scope, and what counts as a read or a write.</summary>
public class FreshScopeAnalyzerTests
{
    private static Task Verify(string code, params DiagnosticResult[] expected)
        => AnalyzeAsync<FreshScopeAnalyzer>(Sources.Usings + Sources.Sheet + code, expected);

    [Fact]
    public Task Read_outside_any_scope_is_reported() => Verify("""
        class C
        {
            string M(Sheet sheet) => {|SE0100:sheet.Title|};
        }
        """);

    [Fact]
    public Task Plain_key_version_and_local_properties_are_not_shared() => Verify("""
        class C
        {
            string M(Sheet sheet)
            {
                sheet.LocalNote = "x";
                sheet.Version = 2;
                return sheet.Id + sheet.LocalNote + sheet.Version;
            }
        }
        """);

    [Fact]
    public Task Using_declaration_covers_the_rest_of_its_block_only() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet)
            {
                var before = {|SE0100:sheet.Title|};
                using var scope = coherence.BeginScope();
                sheet.Title = before;
                return sheet.Title;
            }
        }
        """);

    [Fact]
    public Task Await_using_declaration_in_an_async_method_covers_code_after_await() => Verify("""
        class C
        {
            async Task<string> M(Coherence coherence, Sheet sheet)
            {
                await using var scope = coherence.BeginScope();
                await Task.Delay(1);
                var title = sheet.Title;
                await scope.CommitAsync();
                return title + sheet.LastModified;
            }
        }
        """);

    [Fact]
    public Task Using_statement_covers_its_body_and_code_after_it_is_outside() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet)
            {
                string title;
                using (var scope = coherence.BeginScope())
                {
                    title = sheet.Title;
                }

                using (coherence.BeginScope())
                {
                    title += sheet.Title;
                }

                return title + {|SE0100:sheet.Title|};
            }
        }
        """);

    [Fact]
    public Task Declaration_in_an_inner_block_ends_with_that_block() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet, bool flag)
            {
                if (flag)
                {
                    using var scope = coherence.BeginScope();
                    _ = sheet.Title;
                }

                return {|SE0100:sheet.Title|};
            }
        }
        """);

    [Fact]
    public Task Early_return_inside_the_scope_keeps_later_reads_inside() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet, bool flag)
            {
                using var scope = coherence.BeginScope();
                if (flag)
                {
                    return sheet.Title;
                }

                return sheet.LastModified.ToString();
            }
        }
        """);

    [Fact]
    public Task Try_finally_inside_and_outside_the_scope() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet)
            {
                string a = "", b = "";
                try
                {
                    using var scope = coherence.BeginScope();
                    a = sheet.Title;
                }
                finally
                {
                    b = {|SE0100:sheet.Title|};
                }

                using var outer = coherence.BeginScope();
                try
                {
                    a += sheet.Title;
                }
                finally
                {
                    b += sheet.Title;
                }

                return a + b;
            }
        }
        """);

    [Fact]
    public Task Nested_scopes_the_outer_one_still_covers_code_after_the_inner() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet)
            {
                using (coherence.BeginScope())
                {
                    using (coherence.BeginScope())
                    {
                        _ = sheet.Title;
                    }

                    return sheet.Title;
                }
            }
        }
        """);

    [Fact]
    public Task Switch_section_using_declaration() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet, int kind)
            {
                switch (kind)
                {
                    case 1:
                        using (var scope = coherence.BeginScope())
                        {
                            return sheet.Title;
                        }
                    default:
                        return {|SE0100:sheet.Title|};
                }
            }
        }
        """);

    [Fact]
    public Task Lambda_passed_to_RunInScopeAsync_runs_inside() => Verify("""
        class C
        {
            async Task<string> M(Coherence coherence, Sheet sheet)
            {
                await coherence.RunInScopeAsync(async (scope, ct) =>
                {
                    await Task.Yield();
                    sheet.Title = sheet.Title + "!";
                });

                return await coherence.RunInScopeAsync((scope, ct) => Task.FromResult(sheet.Title), maxAttempts: 3);
            }
        }
        """);

    [Fact]
    public Task Lambda_passed_to_any_parameter_taking_the_scope_first_runs_inside() => Verify("""
        static class Runner
        {
            public static T Run<T>(Func<FreshScope, T> body) => throw null!;
        }

        class C
        {
            string M(Sheet sheet) => Runner.Run(scope => sheet.Title);
        }
        """);

    [Fact]
    public Task Lambda_created_in_a_scope_but_run_later_is_outside() => Verify("""
        class C
        {
            Func<string> M(Coherence coherence, Sheet sheet)
            {
                using var scope = coherence.BeginScope();
                Func<string> later = () => {|SE0100:sheet.Title|};
                return later;
            }
        }
        """);

    [Fact]
    public Task Lambda_stored_first_and_passed_later_is_judged_where_it_is_written() => Verify("""
        class C
        {
            Task M(Coherence coherence, Sheet sheet)
            {
                Func<FreshScope, CancellationToken, Task> body = (scope, ct) => Task.FromResult({|SE0100:sheet.Title|});
                return coherence.RunInScopeAsync(body);
            }
        }
        """);

    [Fact]
    public Task Lambda_inside_a_scope_body_that_is_passed_elsewhere_is_judged_by_itself() => Verify("""
        class C
        {
            Task M(Coherence coherence, List<Sheet> sheets) => coherence.RunInScopeAsync((scope, ct) =>
            {
                foreach (var sheet in sheets)
                {
                    _ = sheet.Title;
                }

                return Task.FromResult(sheets.Select(s => {|SE0100:s.Title|}).ToList());
            });
        }
        """);

    [Fact]
    public Task Local_functions_are_judged_by_themselves() => Verify("""
        class C
        {
            string M(Coherence coherence, Sheet sheet)
            {
                using var scope = coherence.BeginScope();
                return Plain() + Marked();

                string Plain() => {|SE0100:sheet.Title|};

                [RequiresFreshScope]
                string Marked() => sheet.Title;
            }
        }
        """);

    [Fact]
    public Task Lambda_marked_RequiresFreshScope_is_inside() => Verify("""
        class C
        {
            Func<Sheet, string> M() => [RequiresFreshScope] (Sheet sheet) => sheet.Title;
        }
        """);

    [Fact]
    public Task Members_marked_RequiresFreshScope_are_inside_and_their_callers_are_checked() => Verify("""
        class Report
        {
            [RequiresFreshScope]
            public Report(Sheet sheet) => Title = sheet.Title;

            public string Title { get; }

            [RequiresFreshScope]
            public string Summary => Title;

            [RequiresFreshScope]
            public virtual string Render(Sheet sheet) => sheet.Title + sheet.Cells;

            [RequiresFreshScope]
            public static Task<string> LoadAsync(Sheet sheet) => Task.FromResult(sheet.Title);
        }

        class DerivedReport : Report
        {
            public DerivedReport(Sheet sheet) {|SE0102:: base(sheet)|} { }

            [RequiresFreshScope]
            public DerivedReport(Sheet sheet, int n) : base(sheet) { }

            // [RequiresFreshScope] is inherited by overrides.
            public override string Render(Sheet sheet) => sheet.LastModified.ToString();
        }

        class C
        {
            async Task M(Coherence coherence, Sheet sheet)
            {
                var report = {|SE0102:new Report(sheet)|};
                _ = {|SE0102:report.Summary|};
                _ = {|SE0102:report.Render(sheet)|};
                _ = await {|SE0102:Report.LoadAsync(sheet)|};
                _ = nameof(report.Summary);

                await using var scope = coherence.BeginScope();
                report = new Report(sheet);
                _ = report.Summary + report.Render(sheet) + await Report.LoadAsync(sheet);
            }
        }
        """);

    [Fact]
    public Task Reads_in_the_entitys_own_members_are_judged_at_their_callers() => Verify("""
        public partial class Sheet
        {
            public bool IsEmpty => Cells == 0 && Title.Length == 0;

            public bool SameTitle(Sheet other) => other.Title == Title;

            public Func<string> Later() => () => Title;
        }

        class C
        {
            string M(Sheet sheet) => sheet.Describe();
        }
        """);

    [Fact]
    public Task Null_conditional_coalesce_and_patterns_are_reads() => Verify("""
        class C
        {
            bool M(Sheet? sheet, Sheet other)
            {
                var a = sheet?{|SE0100:.Title|};
                var b = a ?? {|SE0100:other.Title|};
                var c = sheet?{|SE0100:.Parent|}?.Id;
                return other is { {|SE0100:Title|}: "x" } || b.Length == c;
            }
        }
        """);

    [Fact]
    public Task Nameof_and_expression_trees_are_not_reads() => Verify("""
        class C
        {
            string M(IQueryable<Sheet> sheets)
            {
                Expression<Func<Sheet, bool>> filter = s => s.Title == "x";
                var found = sheets.Where(s => s.Cells > 3).Select(s => s.Title);
                return nameof(Sheet.Title) + nameof(Sheet.LastModified) + found.Expression;
            }
        }
        """);

    [Fact]
    public Task Writes_outside_a_scope_are_SE0103_and_compound_assignments_are_both() => Verify("""
        class C
        {
            void M(Sheet sheet)
            {
                {|SE0103:sheet.Title|} = "x";
                {|SE0100:{|SE0103:sheet.Cells|}|} += 2;
                {|SE0100:{|SE0103:sheet.Cells|}|}++;
                {|SE0100:{|SE0103:sheet.Parent|}|} ??= sheet;
                ({|SE0103:sheet.Title|}, var n) = ("y", 1);
            }
        }
        """);

    [Fact]
    public Task Object_initializers_are_writes() => Verify("""
        class C
        {
            Sheet Outside() => new Sheet { Id = 1, {|SE0103:Title|} = "x", LocalNote = "n" };

            Sheet Inside(Coherence coherence)
            {
                using var scope = coherence.BeginScope();
                return new Sheet { Id = 2, Title = "y" };
            }
        }
        """);

    [Fact]
    public Task Writes_inside_a_scope_are_not_reported() => Verify("""
        class C
        {
            async Task M(Coherence coherence, Sheet sheet)
            {
                await using var scope = coherence.BeginScope();
                sheet.Title = "Q3";
                sheet.Cells += 1;
                await scope.CommitAsync();
            }
        }
        """);

    [Fact]
    public Task Field_initializers_and_top_level_code_are_outside() => Verify("""
        class C
        {
            static readonly Sheet Shared = new();
            readonly string _title = {|SE0100:Shared.Title|};
        }
        """);

    [Fact]
    public Task Nothing_is_reported_when_the_runtime_is_not_referenced()
    {
        var test = new SharedAnalyzerTest<FreshScopeAnalyzer>
        {
            TestCode = """
                namespace Other
                {
                    [System.AttributeUsage(System.AttributeTargets.Class)]
                    public sealed class SharedEntityAttribute : System.Attribute { }

                    [SharedEntity]
                    public partial class Sheet
                    {
                        public int Id { get; set; }
                        public partial string Title { get; set; }
                    }

                    class C
                    {
                        string M(Sheet sheet) => sheet.Title;
                    }
                }
                """,
        };
        test.TestState.AdditionalReferences.Clear();
        test.TestState.AdditionalReferences.AddRange(TestReferences.WithoutRuntime);
        return test.RunAsync(CancellationToken.None);
    }
}
