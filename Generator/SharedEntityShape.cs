using System;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

// What the generator can serve, as predicates over Roslyn symbols. The analyzers compile-link this file so that a
// declaration the generator refuses is exactly one the analyzers report. Keep it free of the generator's other types.
namespace SharedEntities.CodeAnalysis;

/// <summary>Why the generator cannot serve a <c>[SharedEntity]</c> type (the analyzers map each to a diagnostic).</summary>
internal enum EntityShapeProblem
{
    /// <summary>The type can be served.</summary>
    None,

    /// <summary>SE0005: not a class (struct, interface, record, static class, file-local type, …).</summary>
    UnsupportedTypeKind,

    /// <summary>SE0005: derives from another <c>[SharedEntity]</c> class, whose shared state it would have to replace.</summary>
    DerivesFromSharedEntity,

    /// <summary>SE0001: the type is not <see langword="partial"/>.</summary>
    NotPartial,

    /// <summary>SE0002: a containing type is not <see langword="partial"/>.</summary>
    ContainingTypeNotPartial,

    /// <summary>SE0003: no key property (<c>[Key]</c>, <c>Id</c>, <c>{TypeName}Id</c>).</summary>
    NoKey,

    /// <summary>SE0003: the key has no getter that the type can call, or a type that cannot be boxed (ref struct, pointer, unresolved).</summary>
    KeyNotUsable,

    /// <summary>SE0006: the key or version property is declared <see langword="partial"/>.</summary>
    PartialKeyOrVersion,

    /// <summary>The version property lacks a getter or a (non-init) setter that the type can call.</summary>
    VersionNotReadWrite,

    /// <summary>The attribute's arguments are invalid (empty or unresolved <c>Name</c>).</summary>
    InvalidAttributeArguments,
}

/// <summary>Why a shared (partial) property cannot be generated as a shared accessor: SE0004.</summary>
internal enum SharedPropertyProblem
{
    /// <summary>The property can be shared.</summary>
    None,

    /// <summary>A <see langword="static"/> property: sharing is per entity instance.</summary>
    Static,

    /// <summary>An indexer.</summary>
    Indexer,

    /// <summary>Returns by <see langword="ref"/> or <see langword="ref readonly"/>: writes would bypass the accessor.</summary>
    ReturnsByRef,

    /// <summary>A ref struct type (or a type parameter that allows one): it cannot be stored in a class.</summary>
    RefLikeType,

    /// <summary>A pointer or function pointer type.</summary>
    PointerType,

    /// <summary>An explicit interface implementation.</summary>
    ExplicitInterfaceImplementation,

    /// <summary>An <see langword="abstract"/> property.</summary>
    Abstract,

    /// <summary>The type does not resolve; the compiler reports it.</summary>
    ErrorType,
}

/// <summary>Which numeric type the version property has.</summary>
internal enum VersionPropertyKind
{
    /// <summary>No version: serial-only.</summary>
    None,

    /// <summary>A <see cref="long"/> version.</summary>
    Int64,

    /// <summary>An <see cref="int"/> version (widened to <see cref="long"/> by the generated code).</summary>
    Int32,
}

/// <summary>
/// What a <c>[SharedEntity]</c> declaration may be (the type and its containing types, its key and version, its
/// partial properties), as predicates over symbols. The generator serves what they accept; the analyzers report what
/// they refuse (SE0001–SE0006).
/// </summary>
internal static class SharedEntityShape
{
    public const string AttributeMetadataName = "SharedEntities.SharedEntityAttribute";

    /// <summary>The attribute's named argument that overrides the entity name.</summary>
    public const string NameArgument = "Name";

    /// <summary>
    /// Finds the first problem that stops the generator from serving <paramref name="type"/>, in the order a user would
    /// fix them: kind, partial, key, version, attribute arguments.
    /// </summary>
    public static EntityShapeProblem GetEntityProblem(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        if (!IsSupportedTypeKind(type))
        {
            return EntityShapeProblem.UnsupportedTypeKind;
        }

        if (DerivesFromSharedEntity(type))
        {
            return EntityShapeProblem.DerivesFromSharedEntity;
        }

        if (!IsPartial(type, cancellationToken))
        {
            return EntityShapeProblem.NotPartial;
        }

        if (FindNonPartialContainingType(type, cancellationToken) is not null)
        {
            return EntityShapeProblem.ContainingTypeNotPartial;
        }

        IPropertySymbol? key = FindKey(type);
        if (key is null)
        {
            return EntityShapeProblem.NoKey;
        }

        if (IsPartialProperty(key))
        {
            return EntityShapeProblem.PartialKeyOrVersion;
        }

        if (!IsCallableFrom(key.GetMethod, type)
            || IsAmbiguous(key)
            || key.ReturnsByRef
            || key.ReturnsByRefReadonly
            || key.Type.IsRefLikeType
            || key.Type is ITypeParameterSymbol { AllowsRefLikeType: true }
            || ContainsPointer(key.Type)
            || ContainsErrorType(key.Type))
        {
            return EntityShapeProblem.KeyNotUsable;
        }

        IPropertySymbol? version = FindVersion(type);
        if (version is not null)
        {
            if (IsPartialProperty(version))
            {
                return EntityShapeProblem.PartialKeyOrVersion;
            }

            if (!IsCallableFrom(version.GetMethod, type)
                || IsAmbiguous(version)
                || version.ReturnsByRef
                || version.ReturnsByRefReadonly
                || version.SetMethod is not { IsInitOnly: false } setter
                || !IsCallableFrom(setter, type))
            {
                return EntityShapeProblem.VersionNotReadWrite;
            }
        }

        AttributeData? attribute = FindSharedEntityAttribute(type);
        if (attribute is null || !TryGetEntityName(type, attribute, out _))
        {
            return EntityShapeProblem.InvalidAttributeArguments;
        }

        return EntityShapeProblem.None;
    }

    /// <summary>A plain class: not a record, struct, interface, static class, file-local or script type.</summary>
    public static bool IsSupportedTypeKind(INamedTypeSymbol type)
    {
        if (type.TypeKind != TypeKind.Class || type.IsRecord || type.IsStatic || type.IsImplicitClass || type.IsScriptClass)
        {
            return false;
        }

        // A file-local type cannot get a partial part from another file; nor can a type nested in one.
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            if (current.IsFileLocal)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether a base class (not the type itself) is marked <c>[SharedEntity]</c>.</summary>
    public static bool DerivesFromSharedEntity(INamedTypeSymbol type)
    {
        for (INamedTypeSymbol? baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            if (FindSharedEntityAttribute(baseType) is not null)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether every declaration of <paramref name="type"/> in source says <see langword="partial"/>.</summary>
    public static bool IsPartial(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        if (type.DeclaringSyntaxReferences.IsDefaultOrEmpty)
        {
            return false;
        }

        foreach (SyntaxReference reference in type.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax(cancellationToken) is not TypeDeclarationSyntax declaration
                || !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The innermost containing type that is not <see langword="partial"/>, if any.</summary>
    public static INamedTypeSymbol? FindNonPartialContainingType(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        for (INamedTypeSymbol? containing = type.ContainingType; containing is not null; containing = containing.ContainingType)
        {
            if (!IsPartial(containing, cancellationToken))
            {
                return containing;
            }
        }

        return null;
    }

    /// <summary>
    /// Whether a generated file can add a part to the type: it and all its containing types are <see langword="partial"/>
    /// and none is file-local (a file-local type's parts must all be in one file).
    /// </summary>
    public static bool CanAddPartialPart(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            if (current.IsFileLocal || !IsPartial(current, cancellationToken))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The key: a property of the type or a base type marked <c>[Key]</c>, else one named <c>Id</c>, else
    /// <c>{TypeName}Id</c>, both case-insensitive (EF Core's convention). Static properties and indexers never qualify.
    /// </summary>
    public static IPropertySymbol? FindKey(INamedTypeSymbol type)
    {
        IPropertySymbol? byName = null;
        IPropertySymbol? byTypeName = null;
        string typeNameId = type.Name + "Id";
        for (INamedTypeSymbol? current = type; current is not null && current.SpecialType != SpecialType.System_Object; current = current.BaseType)
        {
            foreach (ISymbol member in current.GetMembers())
            {
                if (AsKeyOrVersionCandidate(member) is not { } property)
                {
                    continue;
                }

                if (HasAttribute(property, "KeyAttribute", "System.ComponentModel.DataAnnotations"))
                {
                    return property;
                }

                if (byName is null && string.Equals(property.Name, "Id", StringComparison.OrdinalIgnoreCase))
                {
                    byName = property;
                }
                else if (byTypeName is null && string.Equals(property.Name, typeNameId, StringComparison.OrdinalIgnoreCase))
                {
                    byTypeName = property;
                }
            }
        }

        return byName ?? byTypeName;
    }

    /// <summary>
    /// The version: a <see cref="long"/> or <see cref="int"/> property of the type or a base type marked
    /// <c>[ConcurrencyCheck]</c>, else one named <c>Version</c>. <see langword="null"/> for a serial-only entity.
    /// </summary>
    public static IPropertySymbol? FindVersion(INamedTypeSymbol type)
    {
        IPropertySymbol? byName = null;
        for (INamedTypeSymbol? current = type; current is not null && current.SpecialType != SpecialType.System_Object; current = current.BaseType)
        {
            foreach (ISymbol member in current.GetMembers())
            {
                if (AsKeyOrVersionCandidate(member) is not { } property
                    || GetVersionKind(property) == VersionPropertyKind.None)
                {
                    continue;
                }

                if (HasAttribute(property, "ConcurrencyCheckAttribute", "System.ComponentModel.DataAnnotations"))
                {
                    return property;
                }

                if (byName is null && property.Name == "Version")
                {
                    byName = property;
                }
            }
        }

        return byName;
    }

    /// <summary>The numeric type of a version property.</summary>
    public static VersionPropertyKind GetVersionKind(IPropertySymbol? property) => property?.Type.SpecialType switch
    {
        SpecialType.System_Int64 => VersionPropertyKind.Int64,
        SpecialType.System_Int32 => VersionPropertyKind.Int32,
        _ => VersionPropertyKind.None,
    };

    /// <summary>
    /// The entity name: the attribute's <c>Name</c>, else the class's metadata name (<c>Sheet</c>, or <c>Sheet`1</c>
    /// for a generic class). <see langword="false"/> when the attribute's arguments are invalid.
    /// </summary>
    public static bool TryGetEntityName(INamedTypeSymbol type, AttributeData attribute, out string name)
    {
        name = type.MetadataName;
        if (attribute.AttributeConstructor is null || !attribute.ConstructorArguments.IsDefaultOrEmpty)
        {
            return false;
        }

        foreach (var argument in attribute.NamedArguments)
        {
            if (argument.Key != NameArgument)
            {
                continue;
            }

            TypedConstant value = argument.Value;
            if (value.Kind == TypedConstantKind.Error || (value.Value is not null && value.Value is not string))
            {
                return false;
            }

            if (value.Value is string explicitName)
            {
                if (explicitName.Trim().Length == 0)
                {
                    return false;
                }

                name = explicitName;
            }
        }

        return true;
    }

    /// <summary>The <c>[SharedEntity]</c> attribute applied to <paramref name="type"/> itself, if any (the first one).</summary>
    public static AttributeData? FindSharedEntityAttribute(INamedTypeSymbol type)
    {
        foreach (AttributeData attribute in type.GetAttributes())
        {
            if (IsSharedEntityAttribute(attribute.AttributeClass))
            {
                return attribute;
            }
        }

        return null;
    }

    /// <summary>Whether <paramref name="attributeClass"/> is <c>SharedEntities.SharedEntityAttribute</c>.</summary>
    public static bool IsSharedEntityAttribute(INamedTypeSymbol? attributeClass)
        => attributeClass is not null && IsNamed(attributeClass, "SharedEntityAttribute", "SharedEntities");

    /// <summary>
    /// A candidate shared property: a partial definition that is not implemented, or implemented only by this
    /// generator (which is what an analyzer sees, since it runs on the compilation that includes generated code).
    /// </summary>
    public static bool IsSharedPropertyDefinition(IPropertySymbol property)
        => property.IsPartialDefinition
            && (property.PartialImplementationPart is null || IsGeneratedImplementation(property.PartialImplementationPart));

    /// <summary>Whether a property is either part of a partial property.</summary>
    public static bool IsPartialProperty(IPropertySymbol property)
        => property.IsPartialDefinition || property.PartialDefinitionPart is not null;

    /// <summary>Whether a partial implementation part was written by this generator (its file is a generated one).</summary>
    public static bool IsGeneratedImplementation(IPropertySymbol implementation)
    {
        foreach (SyntaxReference reference in implementation.DeclaringSyntaxReferences)
        {
            string path = reference.SyntaxTree.FilePath;
            if (path.EndsWith(".g.cs", StringComparison.OrdinalIgnoreCase)
                && path.IndexOf("SharedEntities.Generator", StringComparison.Ordinal) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether a shared property definition can get a shared accessor; if not, why (SE0004).</summary>
    public static bool IsSupportedSharedProperty(IPropertySymbol property, out SharedPropertyProblem problem)
    {
        problem = GetSharedPropertyProblem(property);
        return problem == SharedPropertyProblem.None;
    }

    /// <summary>Why a shared property definition cannot get a shared accessor (SE0004), or <see cref="SharedPropertyProblem.None"/>.</summary>
    public static SharedPropertyProblem GetSharedPropertyProblem(IPropertySymbol property)
    {
        if (property.Type is null || ContainsErrorType(property.Type))
        {
            return SharedPropertyProblem.ErrorType;
        }

        if (property.IsStatic)
        {
            return SharedPropertyProblem.Static;
        }

        if (property.IsIndexer)
        {
            return SharedPropertyProblem.Indexer;
        }

        if (!property.ExplicitInterfaceImplementations.IsDefaultOrEmpty)
        {
            return SharedPropertyProblem.ExplicitInterfaceImplementation;
        }

        if (property.IsAbstract)
        {
            return SharedPropertyProblem.Abstract;
        }

        if (property.ReturnsByRef || property.ReturnsByRefReadonly)
        {
            return SharedPropertyProblem.ReturnsByRef;
        }

        if (ContainsPointer(property.Type))
        {
            return SharedPropertyProblem.PointerType;
        }

        if (property.Type.IsRefLikeType || property.Type is ITypeParameterSymbol { AllowsRefLikeType: true })
        {
            return SharedPropertyProblem.RefLikeType;
        }

        return SharedPropertyProblem.None;
    }

    /// <summary>Whether the type or any type it is built from does not resolve.</summary>
    public static bool ContainsErrorType(ITypeSymbol type) => type switch
    {
        { TypeKind: TypeKind.Error } => true,
        IArrayTypeSymbol array => ContainsErrorType(array.ElementType),
        IPointerTypeSymbol pointer => ContainsErrorType(pointer.PointedAtType),
        INamedTypeSymbol named => AnyTypeArgument(named, ContainsErrorType),
        _ => false,
    };

    /// <summary>Whether the type is or contains a pointer or function pointer (only usable in an unsafe context).</summary>
    public static bool ContainsPointer(ITypeSymbol type) => type switch
    {
        { TypeKind: TypeKind.Pointer or TypeKind.FunctionPointer } => true,
        IArrayTypeSymbol array => ContainsPointer(array.ElementType),
        INamedTypeSymbol named => AnyTypeArgument(named, ContainsPointer),
        _ => false,
    };

    /// <summary>Whether an accessor exists and code in <paramref name="type"/> may call it.</summary>
    public static bool IsCallableFrom(IMethodSymbol? accessor, INamedTypeSymbol type)
    {
        if (accessor is null)
        {
            return false;
        }

        bool sameType = SymbolEqualityComparer.Default.Equals(accessor.ContainingType?.OriginalDefinition, type.OriginalDefinition);
        bool sameAssembly = accessor.ContainingAssembly is { } assembly && type.ContainingAssembly is { } typeAssembly
            && (SymbolEqualityComparer.Default.Equals(assembly, typeAssembly) || assembly.GivesAccessTo(typeAssembly));
        return accessor.DeclaredAccessibility switch
        {
            Accessibility.Public or Accessibility.Protected or Accessibility.ProtectedOrInternal => true,
            Accessibility.Internal or Accessibility.ProtectedAndInternal => sameAssembly,
            Accessibility.Private => sameType,
            _ => false,
        };
    }

    /// <summary>Whether the declaring type has another member of the same name (CS0102): <c>this.Name</c> would not bind.</summary>
    private static bool IsAmbiguous(IPropertySymbol property)
        => property.ContainingType is { } declaringType && declaringType.GetMembers(property.Name).Length > 1;

    private static IPropertySymbol? AsKeyOrVersionCandidate(ISymbol member)
        => member is IPropertySymbol { IsStatic: false, IsIndexer: false } property
            && property.ExplicitInterfaceImplementations.IsDefaultOrEmpty
                ? property
                : null;

    private static bool AnyTypeArgument(INamedTypeSymbol type, Func<ITypeSymbol, bool> predicate)
    {
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            foreach (ITypeSymbol argument in current.TypeArguments)
            {
                if (predicate(argument))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Whether <paramref name="symbol"/> has an attribute of the top-level type <c>{containingNamespace}.{name}</c>.</summary>
    public static bool HasAttribute(ISymbol symbol, string name, string containingNamespace)
    {
        foreach (AttributeData attribute in symbol.GetAttributes())
        {
            if (attribute.AttributeClass is { } attributeClass && IsNamed(attributeClass, name, containingNamespace))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsNamed(INamedTypeSymbol type, string name, string containingNamespace)
    {
        if (type.Name != name || type.ContainingType is not null)
        {
            return false;
        }

        // Compare the namespace segment by segment, from the innermost, without building a string.
        INamespaceSymbol? ns = type.ContainingNamespace;
        int end = containingNamespace.Length;
        while (end > 0)
        {
            int dot = containingNamespace.LastIndexOf('.', end - 1);
            string segment = containingNamespace.Substring(dot + 1, end - dot - 1);
            if (ns is null || ns.IsGlobalNamespace || ns.Name != segment)
            {
                return false;
            }

            ns = ns.ContainingNamespace;
            end = dot < 0 ? 0 : dot;
        }

        return ns is { IsGlobalNamespace: true };
    }
}
