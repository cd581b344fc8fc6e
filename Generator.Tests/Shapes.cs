namespace SharedEntities.Generator.Tests;

/// <summary>One declaration shape the generator must handle.</summary>
/// <param name="Name">The shape's name; its snapshots are <c>Snapshots/{Name}.{hint}.verified.cs</c>.</param>
/// <param name="Sources">The user's files.</param>
/// <param name="UserErrors">Compiler diagnostics the user's own code has whatever the generator does (sorted IDs).</param>
public sealed record Shape(string Name, string[] Sources, string[] UserErrors)
{
    public override string ToString() => Name;
}

/// <summary>Every declaration shape that <see cref="SharedEntityShape"/> tells apart (SE0001–SE0006), and the ones around it.</summary>
public static class Shapes
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.ComponentModel.DataAnnotations;
        using System.Diagnostics.CodeAnalysis;
        using SharedEntities;

        """;

    public static readonly Shape[] All =
    [
        Make("BlockNamespace", """
            namespace Demo
            {
                [SharedEntity]
                public partial class Sheet
                {
                    public int Id { get; set; }
                    public long Version { get; set; }
                    public partial string Title { get; set; }
                    public partial DateTime LastModified { get; set; }
                    public string LocalNote { get; set; } = "";
                }
            }
            """),

        Make("NoNamespace", """
            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("FileScopedNamespace", """
            namespace Demo.Sheets;

            [SharedEntity]
            internal partial class Sheet
            {
                public Guid Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; set; }
                public partial int RowCount { get; set; }
            }
            """),

        Make("Nested", """
            namespace Demo;

            public partial class Workbook
            {
                [SharedEntity]
                public partial class Sheet
                {
                    public int Id { get; set; }
                    public long Version { get; set; }
                    public partial string Title { get; set; }
                }
            }
            """),

        Make("DeeplyNested", """
            namespace Demo;

            public static partial class Level1
            {
                public partial struct Level2
                {
                    public partial record Level3
                    {
                        [SharedEntity]
                        public partial class Sheet
                        {
                            public int Id { get; set; }
                            public long Version { get; set; }
                            public partial string Title { get; set; }
                        }
                    }
                }
            }
            """),

        Make("GenericEntity", """
            namespace Demo;

            [SharedEntity]
            public partial class Cell<TKey, TValue>
                where TKey : notnull
            {
                public TKey Id { get; set; } = default!;
                public long Version { get; set; }
                public partial TValue Value { get; set; }
                public partial TValue? Previous { get; set; }
                public partial List<TValue?> History { get; set; }
            }
            """),

        Make("NestedInGeneric", """
            namespace Demo;

            public partial class Workbook<TOwner, TTag>
                where TOwner : class
                where TTag : struct
            {
                [SharedEntity]
                public partial class Sheet
                {
                    public int Id { get; set; }
                    public long Version { get; set; }
                    public partial TOwner Owner { get; set; }
                    public partial TOwner? Reviewer { get; set; }
                    public partial TTag Tag { get; set; }
                    public partial TTag? OptionalTag { get; set; }
                }
            }
            """),

        Make("Required", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public required partial string Title { get; set; }
                public required partial int Rows { get; init; }
            }
            """),

        Make("AccessorAccessibility", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; private set; }
                public partial int Rows { protected internal get; set; }
                internal partial string Owner { get; private protected set; }
                protected partial string Tag { get; set; }
                private partial string Secret { get; set; }
                public void Rename(string title) => Title = title;
            }
            """),

        Make("InitAccessor", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; init; }
                public long Version { get; set; }
                public partial string Title { get; init; }
                public partial DateTime Created { get; private init; }
            }
            """),

        Make("GetOnlyAndSetOnly", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; }
                public partial int Rows { set; }
            }
            """),

        Make("Virtual", """
            namespace Demo;

            public class Document
            {
                public virtual string Title { get; set; } = "";
                public int Rows { get; set; }
            }

            [SharedEntity]
            public partial class Sheet : Document
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public sealed override partial string Title { get; set; }
                public new partial int Rows { get; set; }
                public virtual partial string Owner { get; set; }
                protected virtual partial DateTime Touched { get; set; }
            }
            """),

        Make("NullableAnnotations", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string? Title { get; set; }
                public partial int? Rows { get; set; }
                public partial List<string?> Tags { get; set; }
                public partial Dictionary<string, int?>? Totals { get; set; }
                public partial string?[]? Cells { get; set; }
                public partial (int Row, string? Label) Anchor { get; set; }
                public partial DateTime? Deleted { get; set; }
                public partial object? Payload { get; set; }
                public partial dynamic Dynamic { get; set; }
            }
            """),

        Make("NullabilityAttributes", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                [AllowNull] public partial string Title { get; set; }
                [NotNull] public partial string? Owner { get; set; }
                [MaybeNull] public partial string Note { get; set; }
                [DisallowNull] public partial string? Tag { get; set; }
            }
            """),

        Make("ObliviousNullability", """
            #nullable disable
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public string Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; set; }
                public partial List<string> Tags { get; set; }
            }
            """),

        Make("DocComments", """
            namespace Demo;

            /// <summary>A sheet.</summary>
            [SharedEntity]
            public partial class Sheet
            {
                /// <summary>The key.</summary>
                public int Id { get; set; }

                /// <summary>The version.</summary>
                public long Version { get; set; }

                /// <summary>The sheet's title.</summary>
                public partial string Title { get; set; }

                /** <summary>When the sheet last changed.</summary> */
                public partial DateTime LastModified { get; set; }

                // A plain comment is not documentation.
                /// <summary>The row count.</summary>
                public partial int Rows { get; set; }
            }
            """),

        new(
            "SeveralParts",
            [
                Usings + """
                namespace Demo;

                [SharedEntity]
                public partial class Sheet
                {
                    public int Id { get; set; }
                    public partial string Title { get; set; }
                }
                """,
                Usings + """
                namespace Demo
                {
                    public partial class Sheet
                    {
                        public long Version { get; set; }
                        public partial DateTime LastModified { get; set; }
                    }

                    partial class Sheet
                    {
                        public partial int Rows { get; set; }
                    }
                }
                """,
            ],
            []),

        Make("SerialOnly", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("IntVersion", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public int Version { get; private set; }
                public partial string Title { get; set; }
            }
            """),

        Make("KeyAttribute", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                [Key] public string Code { get; set; } = "";
                public long Version { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("TypeNameKey", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public long SHEETID { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("ConcurrencyCheckVersion", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public string Version { get; set; } = "";
                [ConcurrencyCheck] public long Revision { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("KeyAndVersionInBaseClass", """
            namespace Demo;

            public abstract class Row
            {
                public int Id { get; protected set; }
                public long Version { get; protected set; }
            }

            [SharedEntity]
            public abstract partial class Sheet : Row
            {
                public partial string Title { get; set; }
            }
            """),

        Make("NullableKey", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public string? Id { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("EntityName", """
            namespace Demo;

            [SharedEntity(Name = "Spread\"sheet")]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("KeywordNames", """
            namespace Demo.@event;

            [SharedEntity]
            public partial class @class
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string @string { get; set; }
                public partial int @this { get; set; }
            }
            """),

        Make("NoSharedProperties", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public string Title { get; set; } = "";
            }
            """),

        Make("ExistingAttributes", """
            using System.Diagnostics;
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                [ExcludeFromCodeCoverage] public partial string Title { get; set; }
                [DebuggerNonUserCode] public partial int Rows { get; set; }
                [Obsolete("Use Title.")] public partial string Caption { get; set; }
            }
            """),

        Make("UserImplementedPartial", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; set; }
                public partial string Cached { get; set; }
                public partial string Cached { get => ""; set { } }
            }
            """),

        Make("UnsupportedProperties", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public partial string Title { get; set; }
                public static partial int Count { get; set; }
                public partial int this[int index, params int[] rest] { get; set; }
                public partial ref int FirstCell { get; }
                public partial ref readonly int SecondCell { get; }
            }
            """),

        Make("UnservableNoKey", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public long Version { get; set; }
                public partial string Title { get; set; }
                public required partial string Owner { get; init; }
                public partial int Rows { get; private set; }
                public partial string? Note { get; }
                public static partial int Count { get; set; }
                public partial int this[int index] { get; }
            }
            """),

        Make("UnservablePartialKey", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public partial int Id { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("UnservableRecord", """
            namespace Demo;

            [SharedEntity]
            public partial record Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }
            """),

        Make("UnservableStaticClass", """
            namespace Demo;

            [SharedEntity]
            public static partial class Sheets
            {
                public static partial string Title { get; set; }
            }
            """),

        Make("UnservableDerivedEntity", """
            namespace Demo;

            [SharedEntity]
            public partial class Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }

            [SharedEntity]
            public partial class ChartSheet : Sheet
            {
                public partial string Chart { get; set; }
            }
            """),

        Make("NotPartial", """
            namespace Demo;

            [SharedEntity]
            public class Sheet
            {
                public int Id { get; set; }
                public long Version { get; set; }
                public string Title { get; set; } = "";
            }
            """),

        Make(
            "NotPartialWithPartialProperty",
            """
            namespace Demo;

            [SharedEntity]
            public class Sheet
            {
                public int Id { get; set; }
                public partial string Title { get; set; }
            }
            """,
            "CS0751",
            "CS9248"),

        Make(
            "ContainingTypeNotPartial",
            """
            namespace Demo;

            public class Workbook
            {
                [SharedEntity]
                public partial class Sheet
                {
                    public int Id { get; set; }
                    public partial string Title { get; set; }
                }
            }
            """,
            "CS9248"),
    ];

    public static TheoryData<string> Names => [.. All.Select(shape => shape.Name)];

    public static Shape Get(string name) => All.Single(shape => shape.Name == name);

    private static Shape Make(string name, string source, params string[] userErrors) => new(name, [Usings + source], userErrors);
}
