using Microsoft.CodeAnalysis;
using SharedEntities.CodeAnalysis;
using SharedEntities.Generator.Tests.Infrastructure;

namespace SharedEntities.Generator.Tests;

/// <summary>
/// The rules in <c>SharedEntityShape.cs</c>, tested on symbols directly: the analyzers compile-link that file, so what
/// these tests pin down is also what the diagnostics will say.
/// </summary>
public sealed class SharedEntityShapeTests
{
    private const string Usings = """
        using System;
        using System.ComponentModel.DataAnnotations;
        using SharedEntities;

        """;

    // Enum values travel as names: the enums are internal to the generator, theory parameters are public.
    public static TheoryData<string, string> Entities => new()
    {
        { "[SharedEntity] public partial class Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.None) },
        { "[SharedEntity] public abstract partial class Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.None) },
        { "[SharedEntity] public class Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.NotPartial) },
        { "public class Outer { [SharedEntity] public partial class Sheet { public int Id { get; set; } } }", nameof(EntityShapeProblem.ContainingTypeNotPartial) },
        { "[SharedEntity] public partial class Sheet { public int Key { get; set; } }", nameof(EntityShapeProblem.NoKey) },
        { "[SharedEntity] public partial class Sheet { public static int Id { get; set; } }", nameof(EntityShapeProblem.NoKey) },
        { "[SharedEntity] public partial class Sheet { private int _id; public int Id { set => _id = value; } }", nameof(EntityShapeProblem.KeyNotUsable) },
        { "public class Row { private int Id { get; set; } } [SharedEntity] public partial class Sheet : Row { }", nameof(EntityShapeProblem.KeyNotUsable) },
        { "[SharedEntity] public partial class Sheet { public Span<int> Id => default; }", nameof(EntityShapeProblem.KeyNotUsable) },
        { "[SharedEntity] public partial class Sheet { public partial int Id { get; set; } }", nameof(EntityShapeProblem.PartialKeyOrVersion) },
        { "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial long Version { get; set; } }", nameof(EntityShapeProblem.PartialKeyOrVersion) },
        { "[SharedEntity] public partial class Sheet { public int Id { get; set; } public long Version { get; } }", nameof(EntityShapeProblem.VersionNotReadWrite) },
        { "[SharedEntity] public partial class Sheet { public int Id { get; set; } public long Version { get; init; } }", nameof(EntityShapeProblem.VersionNotReadWrite) },
        { "public class Row { public int Id { get; set; } public long Version { get; private set; } } [SharedEntity] public partial class Sheet : Row { }", nameof(EntityShapeProblem.VersionNotReadWrite) },
        { "public class Row { public int Id { get; set; } public long Version { get; protected set; } } [SharedEntity] public partial class Sheet : Row { }", nameof(EntityShapeProblem.None) },
        { "[SharedEntity] public partial record Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.UnsupportedTypeKind) },
        { "[SharedEntity] public static partial class Sheet { public static int Id { get; set; } }", nameof(EntityShapeProblem.UnsupportedTypeKind) },
        { "[SharedEntity] file partial class Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.UnsupportedTypeKind) },
        { "[SharedEntity] public partial class Row { public int Id { get; set; } } [SharedEntity] public partial class Sheet : Row { }", nameof(EntityShapeProblem.DerivesFromSharedEntity) },
        { "[SharedEntity(Name = \"\")] public partial class Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.InvalidAttributeArguments) },
        { "[SharedEntity(Name = Missing)] public partial class Sheet { public int Id { get; set; } }", nameof(EntityShapeProblem.InvalidAttributeArguments) },
    };

    public static TheoryData<string, string?> Keys => new()
    {
        { "public int Id { get; set; } [Key] public int Code { get; set; } public int SheetId { get; set; }", "Code" },
        { "public int SheetId { get; set; } public int ID { get; set; }", "ID" },
        { "public int sheetid { get; set; }", "sheetid" },
        { "public int RowId { get; set; }", null },
    };

    public static TheoryData<string, string?> Versions => new()
    {
        { "[ConcurrencyCheck] public int Stamp { get; set; } public long Version { get; set; }", "Stamp" },
        { "[ConcurrencyCheck] public string Stamp { get; set; } = \"\"; public long Version { get; set; }", "Version" },
        { "public string Version { get; set; } = \"\";", null },
        { "public long version { get; set; }", null },
        { "public long? Version { get; set; }", null },
        { "public int Version { get; set; }", "Version" },
    };

    public static TheoryData<string, string> Properties => new()
    {
        { "public partial string Subject { get; set; }", nameof(SharedPropertyProblem.None) },
        { "public static partial string Subject { get; set; }", nameof(SharedPropertyProblem.Static) },
        { "public partial int this[int index] { get; set; }", nameof(SharedPropertyProblem.Indexer) },
        { "public partial ref int Subject { get; }", nameof(SharedPropertyProblem.ReturnsByRef) },
        { "public partial Span<int> Subject { get; set; }", nameof(SharedPropertyProblem.RefLikeType) },
        { "public unsafe partial int* Subject { get; set; }", nameof(SharedPropertyProblem.PointerType) },
        { "public partial Missing Subject { get; set; }", nameof(SharedPropertyProblem.ErrorType) },
        { "public partial System.Collections.Generic.List<Missing> Subject { get; set; }", nameof(SharedPropertyProblem.ErrorType) },
    };

    [Theory]
    [MemberData(nameof(Entities))]
    public void Entity_problem(string source, string expected)
    {
        INamedTypeSymbol sheet = FindSheet(source);
        Assert.Equal(Enum.Parse<EntityShapeProblem>(expected), SharedEntityShape.GetEntityProblem(sheet, CancellationToken.None));
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public void Key_is_found_by_attribute_then_Id_then_type_name_Id(string members, string? expected)
        => Assert.Equal(expected, SharedEntityShape.FindKey(FindSheet($"[SharedEntity] public partial class Sheet {{ {members} }}"))?.Name);

    [Fact]
    public void Key_may_be_inherited()
        => Assert.Equal("Id", SharedEntityShape.FindKey(FindSheet("public class Row { public int Id { get; set; } } [SharedEntity] public partial class Sheet : Row { public int SheetId { get; set; } }"))?.Name);

    [Theory]
    [MemberData(nameof(Versions))]
    public void Version_is_a_long_or_int_marked_or_named_Version(string members, string? expected)
        => Assert.Equal(expected, SharedEntityShape.FindVersion(FindSheet($"[SharedEntity] public partial class Sheet {{ public int Id {{ get; set; }} {members} }}"))?.Name);

    [Theory]
    [InlineData("[SharedEntity] public partial class Sheet { }", "Sheet")]
    [InlineData("[SharedEntity] public partial class Sheet<T> { }", "Sheet`1")]
    [InlineData("[SharedEntity(Name = \"sheets\")] public partial class Sheet { }", "sheets")]
    [InlineData("[SharedEntity(Name = null)] public partial class Sheet { }", "Sheet")]
    public void Entity_name_is_the_attribute_Name_or_the_metadata_name(string source, string expected)
    {
        INamedTypeSymbol sheet = FindSheet(source);
        AttributeData attribute = SharedEntityShape.FindSharedEntityAttribute(sheet)!;
        Assert.True(SharedEntityShape.TryGetEntityName(sheet, attribute, out string name));
        Assert.Equal(expected, name);
    }

    [Theory]
    [MemberData(nameof(Properties))]
    public void Shared_property_problem(string member, string expectedName)
    {
        SharedPropertyProblem expected = Enum.Parse<SharedPropertyProblem>(expectedName);
        INamedTypeSymbol sheet = FindSheet($"[SharedEntity] public unsafe partial class Sheet {{ public int Id {{ get; set; }} {member} }}");
        IPropertySymbol property = sheet.GetMembers().OfType<IPropertySymbol>().Single(p => p.IsPartialDefinition);
        Assert.Equal(expected == SharedPropertyProblem.None, SharedEntityShape.IsSupportedSharedProperty(property, out SharedPropertyProblem problem));
        Assert.Equal(expected, problem);
    }

    [Fact]
    public void Shared_property_definitions_are_recognized_before_and_after_generation()
    {
        // An analyzer sees the compilation with the generated implementations; the generator sees it without.
        GeneratorRun run = GeneratorHarness.Run(Shapes.Get("UserImplementedPartial").Sources);
        foreach (Compilation compilation in new[] { run.Input, run.Output })
        {
            INamedTypeSymbol sheet = compilation.GetTypeByMetadataName("Demo.Sheet")!;
            Assert.True(SharedEntityShape.IsSharedPropertyDefinition((IPropertySymbol)sheet.GetMembers("Title").Single()));
            Assert.False(SharedEntityShape.IsSharedPropertyDefinition((IPropertySymbol)sheet.GetMembers("Cached").Single()));
            Assert.False(SharedEntityShape.IsSharedPropertyDefinition((IPropertySymbol)sheet.GetMembers("Id").Single()));
        }

        IPropertySymbol generated = (IPropertySymbol)run.Output.GetTypeByMetadataName("Demo.Sheet")!.GetMembers("Title").Single();
        Assert.NotNull(generated.PartialImplementationPart);
    }

    private static INamedTypeSymbol FindSheet(string source)
    {
        Compilation compilation = GeneratorHarness.CreateCompilation(Usings + source);
        return compilation.GetSymbolsWithName("Sheet", SymbolFilter.Type).OfType<INamedTypeSymbol>().Single();
    }
}
