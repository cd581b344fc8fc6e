using Microsoft.CodeAnalysis.Testing;
using SharedEntities.Analyzers.Tests.Infrastructure;
using SharedEntities.CodeFixes;
using static SharedEntities.Analyzers.Tests.Infrastructure.Verifier;

namespace SharedEntities.Analyzers.Tests;

/// <summary>Every code fix with its fixed code, and Fix All where the fix offers it.</summary>
public class CodeFixTests
{
    private const string Usings = """
        using System;
        using System.Threading.Tasks;
        using SharedEntities;

        """;

    [Fact]
    public Task SE0001_adds_partial() => FixAsync<SharedEntityDeclarationAnalyzer, MakePartialCodeFixProvider>(Usings + """
        [SharedEntity]
        public sealed class {|SE0001:Sheet|}
        {
            public int Id { get; set; }
        }

        [SharedEntity]
        class {|SE0001:Note|}
        {
            public int Id { get; set; }
        }
        """, Usings + """
        [SharedEntity]
        public sealed partial class Sheet
        {
            public int Id { get; set; }
        }

        [SharedEntity]
        partial class Note
        {
            public int Id { get; set; }
        }
        """);

    [Fact]
    public Task SE0001_and_SE0002_fix_all_makes_every_type_partial()
    {
        var test = new SharedFixTest<SharedEntityDeclarationAnalyzer, MakePartialCodeFixProvider>
        {
            TestCode = Usings + """
                public static class {|SE0002:Outer|}
                {
                    internal class {|SE0002:Inner|}
                    {
                        [SharedEntity]
                        public class {|SE0001:Sheet|}
                        {
                            public int Id { get; set; }
                            public partial string {|CS0751:Title|} { get; set; }
                        }
                    }
                }
                """,
            FixedCode = Usings + """
                public static partial class Outer
                {
                    internal partial class Inner
                    {
                        [SharedEntity]
                        public partial class Sheet
                        {
                            public int Id { get; set; }
                            public partial string Title { get; set; }
                        }
                    }
                }
                """,
            NumberOfFixAllIterations = 1,
        };
        return test.RunAsync(CancellationToken.None);
    }

    [Fact]
    public Task SE0006_removes_partial_from_key_and_version_leaving_auto_properties() => FixAsync<SharedEntityDeclarationAnalyzer, RemovePartialFromKeyCodeFixProvider>(Usings + """
        [SharedEntity]
        public partial class Sheet
        {
            public partial int {|SE0006:Id|} { get; set; }
            partial long {|SE0006:Version|} { get; set; }
            public partial string Title { get; set; }
        }
        """, Usings + """
        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            long Version { get; set; }
            public partial string Title { get; set; }
        }
        """);

    [Fact]
    public Task SE0006_keeps_a_user_written_implementation_part() => FixAsync<SharedEntityDeclarationAnalyzer, RemovePartialFromKeyCodeFixProvider>(Usings + """
        [SharedEntity]
        public partial class Sheet
        {
            private int _id;
            public partial int {|SE0006:Id|} { get; set; }
            public partial int Id { get => _id; set => _id = value; }
        }
        """, Usings + """
        [SharedEntity]
        public partial class Sheet
        {
            private int _id;
            public int Id { get => _id; set => _id = value; }
        }
        """);

    [Fact]
    public Task SE0006_for_an_init_only_version_offers_no_fix() => FixAsync<SharedEntityDeclarationAnalyzer, RemovePartialFromKeyCodeFixProvider>(Usings + """
        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public long {|SE0006:Version|} { get; init; }
        }
        """, Usings + """
        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public long {|SE0006:Version|} { get; init; }
        }
        """);

    private const string Sheet = """

        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public partial string Title { get; set; }
        }

        """;

    [Fact]
    public Task SE0100_begins_an_await_using_scope_in_an_async_method() => FixAsync<FreshScopeAnalyzer, FreshScopeCodeFixProvider>(Usings + Sheet + """
        class Service
        {
            async Task<string> LoadAsync(Coherence coherence, Sheet sheet)
            {
                await Task.Yield();
                var title = {|SE0100:sheet.Title|};
                return title;
            }
        }
        """, Usings + Sheet + """
        class Service
        {
            async Task<string> LoadAsync(Coherence coherence, Sheet sheet)
            {
                await Task.Yield();
                await using var scope = coherence.BeginScope();
                var title = sheet.Title;
                return title;
            }
        }
        """, equivalenceKey: FreshScopeCodeFixProvider.BeginScopeKey);

    [Fact]
    public Task SE0103_begins_a_using_scope_from_a_field_and_avoids_taken_names() => FixAsync<FreshScopeAnalyzer, FreshScopeCodeFixProvider>(Usings + Sheet + """
        class Service(Coherence coherence)
        {
            private readonly Coherence _coherence = coherence;

            void Rename(Sheet sheet, string scope)
            {
                if (scope.Length > 0)
                {
                    {|SE0103:sheet.Title|} = scope;
                }
            }
        }
        """, Usings + Sheet + """
        class Service(Coherence coherence)
        {
            private readonly Coherence _coherence = coherence;

            void Rename(Sheet sheet, string scope)
            {
                if (scope.Length > 0)
                {
                    using var scope2 = coherence.BeginScope();
                    sheet.Title = scope;
                }
            }
        }
        """, equivalenceKey: FreshScopeCodeFixProvider.BeginScopeKey);

    [Fact]
    public Task SE0100_turns_an_expression_body_into_a_block_with_a_scope() => FixAsync<FreshScopeAnalyzer, FreshScopeCodeFixProvider>(Usings + Sheet + """
        static class Titles
        {
            static readonly Coherence Coherence = null!;

            public static string Of(Sheet sheet) => {|SE0100:sheet.Title|};
        }
        """, Usings + Sheet + """
        static class Titles
        {
            static readonly Coherence Coherence = null!;

            public static string Of(Sheet sheet)
            {
                using var scope = Coherence.BeginScope();
                return sheet.Title;
            }
        }
        """, equivalenceKey: FreshScopeCodeFixProvider.BeginScopeKey);

    [Fact]
    public Task SE0100_marks_the_method_RequiresFreshScope() => FixAsync<FreshScopeAnalyzer, FreshScopeCodeFixProvider>("""
        using System;

        namespace App
        {
            [SharedEntities.SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }

            class Report
            {
                public string Render(Sheet sheet)
                {
                    return {|SE0100:sheet.Title|};
                }
            }
        }
        """, """
        using System;
        using SharedEntities;

        namespace App
        {
            [SharedEntities.SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }

            class Report
            {
                [RequiresFreshScope]
                public string Render(Sheet sheet)
                {
                    return sheet.Title;
                }
            }
        }
        """, equivalenceKey: FreshScopeCodeFixProvider.MarkKey);

    [Fact]
    public Task SE0102_marks_the_local_function_when_no_coherence_is_in_reach() => new SharedFixTest<FreshScopeAnalyzer, FreshScopeCodeFixProvider>
    {
        // The caller is marked; the local function inside it is judged by itself until it is marked too.
        TestCode = Usings + Sheet + """
        class Report
        {
            [RequiresFreshScope]
            static string Render(Sheet sheet) => sheet.Title;

            [RequiresFreshScope]
            string Run(Sheet sheet)
            {
                return Local();

                string Local() => {|SE0102:Render(sheet)|};
            }
        }
        """,
        FixedCode = Usings + Sheet + """
        class Report
        {
            [RequiresFreshScope]
            static string Render(Sheet sheet) => sheet.Title;

            [RequiresFreshScope]
            string Run(Sheet sheet)
            {
                return Local();

                [RequiresFreshScope]
                string Local() => Render(sheet);
            }
        }
        """,
    }.RunAsync(CancellationToken.None);

    [Fact]
    public Task SE0100_in_a_lambda_offers_only_the_scope_inside_the_lambda() => FixAsync<FreshScopeAnalyzer, FreshScopeCodeFixProvider>(Usings + Sheet + """
        class Service
        {
            Func<Sheet, string> Make(Coherence coherence) => sheet =>
            {
                return {|SE0100:sheet.Title|};
            };
        }
        """, Usings + Sheet + """
        class Service
        {
            Func<Sheet, string> Make(Coherence coherence) => sheet =>
            {
                using var scope = coherence.BeginScope();
                return sheet.Title;
            };
        }
        """);
}
