using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using SharedEntities.Analyzers.Tests.Infrastructure;
using static SharedEntities.Analyzers.Tests.Infrastructure.Verifier;

namespace SharedEntities.Analyzers.Tests;

/// <summary>SE0001–SE0006: declarations the generator cannot serve, each at the identifier the user must change.</summary>
public class DeclarationAnalyzerTests
{
    private static Task Verify(string code, params DiagnosticResult[] expected)
        => AnalyzeAsync<SharedEntityDeclarationAnalyzer>(Sources.Usings + code, expected);

    [Fact]
    public Task A_valid_entity_has_no_diagnostic() => Verify(Sources.Sheet + """
        public partial class Outer
        {
            [SharedEntity(Name = "doc")]
            public partial class Doc
            {
                [System.ComponentModel.DataAnnotations.Key]
                public Guid Code { get; set; }

                [System.ComponentModel.DataAnnotations.ConcurrencyCheck]
                public int Revision { get; set; }

                public partial string Body { get; set; }
            }
        }

        public partial class NotShared
        {
            public partial string Anything { get; set; }
        }
        """);

    [Fact]
    public Task SE0001_type_not_partial() => Verify("""
        [SharedEntity]
        public class {|SE0001:Sheet|}
        {
            public int Id { get; set; }
            public string Title { get; set; } = "";
        }
        """);

    [Fact]
    public Task SE0001_with_partial_properties_the_compiler_adds_its_own_error() => Verify("""
        [SharedEntity]
        public class {|SE0001:Sheet|}
        {
            public int Id { get; set; }
            public partial string {|CS0751:Title|} { get; set; }
        }
        """);

    [Fact]
    public Task SE0002_containing_types_not_partial() => Verify("""
        public class {|SE0002:Outer|}
        {
            public partial class Middle
            {
                public class {|SE0002:Inner|}
                {
                    [SharedEntity]
                    public partial class Sheet
                    {
                        public int Id { get; set; }
                        public partial string Title { get; set; }
                    }
                }
            }
        }
        """);

    [Fact]
    public Task SE0003_no_key() => Verify("""
        [SharedEntity]
        public partial class {|SE0003:Sheet|}
        {
            public int Number { get; set; }
            public partial string Title { get; set; }
        }
        """);

    [Fact]
    public Task SE0003_type_name_id_and_inherited_keys_count() => Verify("""
        public class EntityBase
        {
            public long Id { get; set; }
        }

        [SharedEntity]
        public partial class Derived : EntityBase
        {
            public partial string Title { get; set; }
        }

        [SharedEntity]
        public partial class Sheet
        {
            public int SheetId { get; set; }
        }
        """);

    [Fact]
    public Task SE0003_key_without_a_getter() => Verify("""
        [SharedEntity]
        public partial class Sheet
        {
            private int _id;
            public int {|SE0003:Id|} { set => _id = value; }
            public partial string Title { get; set; }
        }
        """);

    [Fact]
    public Task SE0004_unsupported_shared_property_shapes() => Verify("""
        public interface INamed
        {
            string Name { get; set; }
        }

        [SharedEntity]
        public unsafe partial class Sheet : INamed
        {
            private static int s_counter;
            public int Id { get; set; }
            public static partial int {|SE0004:Counter|} { get; set; }
            public partial string {|SE0004:this|}[int index] { get; set; }
            public partial ref int {|SE0004:Total|} { get; }
            public partial int* {|SE0004:Pointer|} { get; set; }
            partial string INamed.{|CS0754:{|SE0004:Name|}|} { get; set; }
            public partial string Fine { get; set; }
        }
        """);

    [Fact]
    public Task SE0005_unsupported_kinds_of_type() => Verify("""
        [SharedEntity]
        public static partial class {|SE0005:Settings|}
        {
        }

        [SharedEntity]
        public partial record {|SE0005:Row|}(int Id);

        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
        }

        [SharedEntity]
        public partial class {|SE0005:SpecialSheet|} : Sheet
        {
        }

        [{|SE0005:SharedEntity(Name = " ")|}]
        public partial class Blank
        {
            public int Id { get; set; }
        }
        """);

    [Fact]
    public Task SE0005_struct_is_also_a_compiler_error() => Verify("""
        [{|CS0592:SharedEntity|}]
        public partial struct {|SE0005:Point|}
        {
            public int Id { get; set; }
        }
        """);

    [Fact]
    public Task SE0006_partial_key_and_version() => Verify("""
        [SharedEntity]
        public partial class Sheet
        {
            public partial int {|SE0006:Id|} { get; set; }
            public partial long {|SE0006:Version|} { get; set; }
            public partial string Title { get; set; }
        }
        """);

    [Fact]
    public Task SE0006_version_that_cannot_be_written() => Verify("""
        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public long {|SE0006:Version|} { get; init; }
            public partial string Title { get; set; }
        }
        """);

    [Fact]
    public Task Several_independent_problems_are_reported_together() => Verify("""
        public class {|SE0002:Outer|}
        {
            [SharedEntity]
            public class {|SE0001:{|SE0003:Sheet|}|}
            {
                public string Title { get; set; } = "";
            }
        }
        """);

    [Fact]
    public Task Messages_say_what_to_do() => Verify("""
        [SharedEntity]
        public partial class {|#0:Sheet|}
        {
            public int Number { get; set; }
        }
        """,
        new DiagnosticResult(DiagnosticDescriptors.NoKey).WithLocation(0)
            .WithArguments("Sheet", "has no key: add a property marked [Key], or named Id or SheetId"));
}
