using System;
using SharedEntities.CodeAnalysis;

// The generator's model: everything the emitter needs, as strings, bools, enums and EquatableArrays, so that equal
// inputs give equal models and the incremental pipeline can stop early. No ISymbol, SyntaxNode, Location,
// Compilation or Diagnostic may be reachable from here (a test walks the object graph to make sure).
namespace SharedEntities.Generator;

/// <summary>One generated file: one <c>[SharedEntity]</c> type, however many partial parts it has.</summary>
/// <param name="HintName">The file-safe hint name (<c>Demo.Sheet.g.cs</c>).</param>
/// <param name="Hierarchy">Where the type sits: namespace and containing types, the type itself last.</param>
/// <param name="Entity">The entity's wiring, or <see langword="null"/> when the generator cannot serve the type and only implements its partial properties plainly.</param>
/// <param name="Properties">The partial property definitions to implement, in declaration order.</param>
internal sealed record EntityModel(
    string HintName,
    HierarchyInfo Hierarchy,
    EntityInfo? Entity,
    EquatableArray<PropertyModel> Properties);

/// <summary>The namespace and the chain of type declarations to re-open.</summary>
/// <param name="Namespace">The containing namespace (<c>Demo.Inner</c>, keywords escaped), or <see langword="null"/> for the global namespace.</param>
/// <param name="Types">The containing types from the outermost, ending with the entity type.</param>
internal sealed record HierarchyInfo(string? Namespace, EquatableArray<TypeDeclarationInfo> Types);

/// <summary>One re-opened type declaration: <c>partial class Outer&lt;T&gt;</c>.</summary>
/// <param name="Name">The escaped identifier.</param>
/// <param name="Kind">Which keyword declares it.</param>
/// <param name="IsStatic">Whether it is a static class.</param>
/// <param name="TypeParameterList">The type parameter list with variance (<c>&lt;in T, U&gt;</c>), or empty.</param>
internal sealed record TypeDeclarationInfo(string Name, TypeDeclarationKind Kind, bool IsStatic, string TypeParameterList);

/// <summary>The keyword of a re-opened type declaration.</summary>
internal enum TypeDeclarationKind
{
    Class,
    Struct,
    Interface,
    RecordClass,
    RecordStruct,
}

/// <summary>What a served entity needs beyond its properties.</summary>
/// <param name="EntityName">The entity name in store keys.</param>
/// <param name="TypeOfName">The fully qualified type for <c>typeof</c> (<c>global::Demo.Outer&lt;T&gt;.Sheet</c>).</param>
/// <param name="KeyName">The key property's name.</param>
/// <param name="KeyIdentifier">The key property's escaped identifier.</param>
/// <param name="KeyMayBeNull">Whether the key's static type admits <see langword="null"/> (then <c>SharedKey</c> throws on null).</param>
/// <param name="VersionName">The version property's name, or <see langword="null"/> for a serial-only entity.</param>
/// <param name="VersionIdentifier">The version property's escaped identifier, or <see langword="null"/>.</param>
/// <param name="VersionKind">The version's numeric type.</param>
internal sealed record EntityInfo(
    string EntityName,
    string TypeOfName,
    string KeyName,
    string KeyIdentifier,
    bool KeyMayBeNull,
    string? VersionName,
    string? VersionIdentifier,
    VersionPropertyKind VersionKind);

/// <summary>How a partial property definition is implemented.</summary>
internal enum PropertyImplementationKind
{
    /// <summary>A shared accessor: checks on read, records on write.</summary>
    Shared,

    /// <summary>A plain backing field: the type cannot be served, but the property should not cascade into CS9248.</summary>
    Plain,

    /// <summary>No field is possible (indexer, ref return, ref struct type): accessors throw <see cref="NotSupportedException"/>.</summary>
    Throwing,
}

/// <summary>Attributes the generator adds to a property implementation unless the definition already has them.</summary>
[Flags]
internal enum PropertyAttributes
{
    None = 0,
    GeneratedCode = 1,
    DebuggerNonUserCode = 2,
    ExcludeFromCodeCoverage = 4,
}

/// <summary>One partial property definition to implement.</summary>
/// <param name="Name">The property name (<c>Title</c>); <c>this[]</c> for an indexer.</param>
/// <param name="Identifier">The escaped identifier, or <c>this</c> for an indexer.</param>
/// <param name="Kind">Shared, plain or throwing.</param>
/// <param name="Modifiers">The definition's modifiers, in its order (<c>public required partial</c>).</param>
/// <param name="RefKind">The ref-return prefix of the type (<c>ref </c>, <c>ref readonly </c>) or empty.</param>
/// <param name="TypeName">The fully qualified type with nullable annotations (<c>global::System.Collections.Generic.List&lt;string?&gt;</c>).</param>
/// <param name="TypeOfName">The type as <c>typeof</c> accepts it (no top-level nullable reference annotation, <c>object</c> for <c>dynamic</c>).</param>
/// <param name="FieldName">The backing field (<c>__shared_Title</c>), empty when there is none.</param>
/// <param name="FieldInitializer">The field's initializer: <c> = default!</c> for a non-nullable reference type or unconstrained type parameter, <c> = default</c> for a plain field that nothing assigns, else empty.</param>
/// <param name="IsStatic">Whether the property (and so its field) is static.</param>
/// <param name="Parameters">An indexer's parameter list (<c>[int row, int column]</c>), else empty.</param>
/// <param name="Getter">The get accessor, if declared.</param>
/// <param name="Setter">The set or init accessor, if declared.</param>
/// <param name="SuppressNullOnGet">The definition promises a non-null result (<c>[NotNull]</c>) over a nullable field.</param>
/// <param name="SuppressNullOnSet">The definition accepts null (<c>[AllowNull]</c>) into a non-nullable field.</param>
/// <param name="HasDocumentation">Whether the definition has a documentation comment (then the implementation says <c>&lt;inheritdoc/&gt;</c>).</param>
/// <param name="Attributes">Which of the generator's attributes to add.</param>
internal sealed record PropertyModel(
    string Name,
    string Identifier,
    PropertyImplementationKind Kind,
    string Modifiers,
    string RefKind,
    string TypeName,
    string TypeOfName,
    string FieldName,
    string FieldInitializer,
    bool IsStatic,
    string Parameters,
    AccessorModel? Getter,
    AccessorModel? Setter,
    bool SuppressNullOnGet,
    bool SuppressNullOnSet,
    bool HasDocumentation,
    PropertyAttributes Attributes);

/// <summary>One accessor of a property definition.</summary>
/// <param name="Kind">get, set or init.</param>
/// <param name="Modifiers">The accessor's own modifiers (<c>private</c>, <c>protected internal</c>), or empty.</param>
internal sealed record AccessorModel(AccessorKind Kind, string Modifiers);

/// <summary>The keyword of an accessor.</summary>
internal enum AccessorKind
{
    Get,
    Set,
    Init,
}
