using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using SharedEntities.CodeAnalysis;

namespace SharedEntities.Generator;

/// <summary>
/// Turns a <c>[SharedEntity]</c> declaration into an <see cref="EntityModel"/>. Never throws on broken source: anything
/// it cannot read makes it generate less (a property, or the whole file), and the compiler or analyzers report why.
/// </summary>
internal static class SharedEntityParser
{
    /// <summary>Fully qualified, with <c>?</c> on nullable reference types: for declarations.</summary>
    private static readonly SymbolDisplayFormat TypeFormat = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>Fully qualified, without nullable reference annotations (<c>typeof(string?)</c> is an error).</summary>
    private static readonly SymbolDisplayFormat TypeOfFormat = SymbolDisplayFormat.FullyQualifiedFormat;

    private static readonly SymbolDisplayFormat NamespaceFormat = new(
        globalNamespaceStyle: SymbolDisplayGlobalNamespaceStyle.Omitted,
        typeQualificationStyle: SymbolDisplayTypeQualificationStyle.NameAndContainingTypesAndNamespaces,
        miscellaneousOptions: SymbolDisplayMiscellaneousOptions.EscapeKeywordIdentifiers);

    public static EntityModel? Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol type
            || !IsFirstApplication(context, type)
            || !IsUniquelyNamed(type)
            || !SharedEntityShape.CanAddPartialPart(type, cancellationToken))
        {
            // Nothing to generate: a repeated attribute, two types of one name, or a type that cannot take a
            // generated part (not partial, inside a non-partial type, file-local).
            return null;
        }

        cancellationToken.ThrowIfCancellationRequested();
        EntityInfo? entity = SharedEntityShape.GetEntityProblem(type, cancellationToken) == EntityShapeProblem.None
            ? ParseEntity(type)
            : null;

        ImmutableArray<PropertyModel>.Builder properties = ImmutableArray.CreateBuilder<PropertyModel>();
        foreach (ISymbol member in type.GetMembers())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (member is IPropertySymbol property
                && SharedEntityShape.IsSharedPropertyDefinition(property)
                && ParseProperty(type, property, served: entity is not null, cancellationToken) is { } model)
            {
                properties.Add(model);
            }
        }

        if (entity is null && properties.Count == 0)
        {
            return null;
        }

        return new EntityModel(
            GetHintName(type),
            GetHierarchy(type),
            entity,
            properties.ToImmutable().ToEquatableArray());
    }

    /// <summary>
    /// A type whose parts repeat the attribute (an error the compiler reports) is seen once per attribute: keep the
    /// declaration that carries the first one, so that each type gets exactly one file.
    /// </summary>
    private static bool IsFirstApplication(GeneratorAttributeSyntaxContext context, INamedTypeSymbol type)
        => SharedEntityShape.FindSharedEntityAttribute(type)?.ApplicationSyntaxReference is { } first
            && first.SyntaxTree == context.TargetNode.SyntaxTree
            && context.TargetNode.Span.Contains(first.Span);

    /// <summary>
    /// Two types with one name (CS0101, e.g. a class and a record) would need the same hint name; the compiler
    /// reports the conflict, and neither gets a file.
    /// </summary>
    private static bool IsUniquelyNamed(INamedTypeSymbol type)
        => type.ContainingSymbol is not INamespaceOrTypeSymbol container
            || container.GetTypeMembers(type.Name, type.Arity).Length == 1;

    private static EntityInfo? ParseEntity(INamedTypeSymbol type)
    {
        IPropertySymbol? key = SharedEntityShape.FindKey(type);
        AttributeData? attribute = SharedEntityShape.FindSharedEntityAttribute(type);
        if (key is null || attribute is null || !SharedEntityShape.TryGetEntityName(type, attribute, out string entityName))
        {
            return null;
        }

        IPropertySymbol? version = SharedEntityShape.FindVersion(type);
        return new EntityInfo(
            entityName,
            type.ToDisplayString(TypeOfFormat),
            key.Name,
            Escape(key.Name),
            KeyMayBeNull(key.Type),
            version?.Name,
            version is null ? null : Escape(version.Name),
            SharedEntityShape.GetVersionKind(version));
    }

    // SharedKey returns a non-null object: a key whose static type admits null is checked rather than suppressed.
    private static bool KeyMayBeNull(ITypeSymbol type)
        => type.NullableAnnotation == NullableAnnotation.Annotated
            || type.OriginalDefinition.SpecialType == SpecialType.System_Nullable_T
            || type is ITypeParameterSymbol;

    private static PropertyModel? ParseProperty(INamedTypeSymbol type, IPropertySymbol property, bool served, CancellationToken cancellationToken)
    {
        if (property.DeclaringSyntaxReferences.IsDefaultOrEmpty
            || property.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken) is not BasePropertyDeclarationSyntax { AccessorList: { } accessorList } syntax)
        {
            return null;
        }

        SharedPropertyProblem problem = SharedEntityShape.GetSharedPropertyProblem(property);
        PropertyImplementationKind kind;
        switch (problem)
        {
            case SharedPropertyProblem.None when served:
                kind = PropertyImplementationKind.Shared;
                break;
            case SharedPropertyProblem.None or SharedPropertyProblem.Static:
                kind = PropertyImplementationKind.Plain;
                break;
            case SharedPropertyProblem.Indexer or SharedPropertyProblem.ReturnsByRef or SharedPropertyProblem.RefLikeType:
                kind = PropertyImplementationKind.Throwing;
                break;
            default:
                // Pointers, unresolved types, explicit interface implementations, abstract: the compiler already
                // reports these declarations; an implementation would only add errors.
                return null;
        }

        // An instance member of a static class, or a name declared twice (CS0102): already errors; an
        // implementation would only add ambiguities.
        if ((type.IsStatic && !property.IsStatic) || (!property.IsIndexer && type.GetMembers(property.Name).Length > 1))
        {
            return null;
        }

        string parameters = "";
        if (property.IsIndexer && !TryFormatParameters(property, out parameters))
        {
            return null;
        }

        AccessorModel? getter = null;
        AccessorModel? setter = null;
        foreach (AccessorDeclarationSyntax accessor in accessorList.Accessors)
        {
            string modifiers = JoinModifiers(accessor.Modifiers);
            switch (accessor.Kind())
            {
                case SyntaxKind.GetAccessorDeclaration when getter is null:
                    getter = new AccessorModel(AccessorKind.Get, modifiers);
                    break;
                case SyntaxKind.SetAccessorDeclaration when setter is null:
                    setter = new AccessorModel(AccessorKind.Set, modifiers);
                    break;
                case SyntaxKind.InitAccessorDeclaration when setter is null:
                    setter = new AccessorModel(AccessorKind.Init, modifiers);
                    break;
                default:
                    // A repeated or foreign accessor: the declaration is broken; leave it to the compiler.
                    return null;
            }
        }

        if (getter is null && setter is null)
        {
            return null;
        }

        ITypeSymbol propertyType = property.Type;
        bool nullable = propertyType.NullableAnnotation == NullableAnnotation.Annotated
            || propertyType.OriginalDefinition.SpecialType == SpecialType.System_Nullable_T;
        bool nonNullableReference = !propertyType.IsValueType && propertyType.NullableAnnotation != NullableAnnotation.Annotated;
        string fieldName = kind switch
        {
            PropertyImplementationKind.Shared => "__shared_" + property.Name,
            PropertyImplementationKind.Plain => "__backing_" + property.Name,
            _ => "",
        };

        return new PropertyModel(
            Name: property.IsIndexer ? "this[]" : property.Name,
            Identifier: property.IsIndexer ? "this" : Escape(property.Name),
            Kind: kind,
            Modifiers: JoinModifiers(syntax.Modifiers),
            RefKind: property.ReturnsByRefReadonly ? "ref readonly " : property.ReturnsByRef ? "ref " : "",
            TypeName: propertyType.ToDisplayString(TypeFormat),
            TypeOfName: propertyType.TypeKind == TypeKind.Dynamic ? "object" : propertyType.ToDisplayString(TypeOfFormat),
            FieldName: fieldName,
            FieldInitializer: kind switch
            {
                PropertyImplementationKind.Throwing => "",
                _ when nonNullableReference => " = default!",
                // A plain field behind a get-only property is never assigned (CS0649) without an initializer.
                PropertyImplementationKind.Plain when setter is null => " = default",
                _ => "",
            },
            IsStatic: property.IsStatic,
            Parameters: parameters,
            Getter: getter,
            Setter: setter,
            SuppressNullOnGet: nullable && SharedEntityShape.HasAttribute(property, "NotNullAttribute", "System.Diagnostics.CodeAnalysis"),
            SuppressNullOnSet: nonNullableReference && SharedEntityShape.HasAttribute(property, "AllowNullAttribute", "System.Diagnostics.CodeAnalysis"),
            HasDocumentation: HasDocumentationComment(syntax),
            Attributes: GetAttributesToAdd(property));
    }

    /// <summary>An indexer's parameters as the implementation must repeat them (default values belong to the definition only).</summary>
    private static bool TryFormatParameters(IPropertySymbol indexer, out string parameters)
    {
        StringBuilder builder = new("[");
        for (int i = 0; i < indexer.Parameters.Length; i++)
        {
            IParameterSymbol parameter = indexer.Parameters[i];
            if (SharedEntityShape.ContainsErrorType(parameter.Type) || SharedEntityShape.ContainsPointer(parameter.Type))
            {
                parameters = "";
                return false;
            }

            if (i > 0)
            {
                builder.Append(", ");
            }

            if (parameter.ScopedKind == ScopedKind.ScopedValue)
            {
                builder.Append("scoped ");
            }

            builder.Append(parameter.RefKind switch
            {
                RefKind.In => "in ",
                RefKind.Ref => "ref ",
                RefKind.Out => "out ",
                RefKind.RefReadOnlyParameter => "ref readonly ",
                _ => "",
            });
            if (parameter.IsParams)
            {
                builder.Append("params ");
            }

            builder.Append(parameter.Type.ToDisplayString(TypeFormat)).Append(' ').Append(Escape(parameter.Name));
        }

        parameters = builder.Append(']').ToString();
        return true;
    }

    private static PropertyAttributes GetAttributesToAdd(IPropertySymbol property)
    {
        // These attributes allow one use; the definition's and the implementation's attributes merge, so repeating
        // one the user wrote would be CS0579.
        PropertyAttributes attributes = PropertyAttributes.None;
        if (!SharedEntityShape.HasAttribute(property, "GeneratedCodeAttribute", "System.CodeDom.Compiler"))
        {
            attributes |= PropertyAttributes.GeneratedCode;
        }

        if (!SharedEntityShape.HasAttribute(property, "DebuggerNonUserCodeAttribute", "System.Diagnostics"))
        {
            attributes |= PropertyAttributes.DebuggerNonUserCode;
        }

        if (!SharedEntityShape.HasAttribute(property, "ExcludeFromCodeCoverageAttribute", "System.Diagnostics.CodeAnalysis"))
        {
            attributes |= PropertyAttributes.ExcludeFromCodeCoverage;
        }

        return attributes;
    }

    private static bool HasDocumentationComment(SyntaxNode syntax)
    {
        foreach (SyntaxTrivia trivia in syntax.GetLeadingTrivia())
        {
            // With DocumentationMode.None, /// comments are parsed as plain single-line comments.
            if (trivia.IsKind(SyntaxKind.SingleLineDocumentationCommentTrivia)
                || trivia.IsKind(SyntaxKind.MultiLineDocumentationCommentTrivia)
                || (trivia.IsKind(SyntaxKind.SingleLineCommentTrivia) && trivia.ToString().StartsWith("///", System.StringComparison.Ordinal)))
            {
                return true;
            }
        }

        return false;
    }

    private static HierarchyInfo GetHierarchy(INamedTypeSymbol type)
    {
        ImmutableArray<TypeDeclarationInfo>.Builder types = ImmutableArray.CreateBuilder<TypeDeclarationInfo>();
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            types.Insert(0, new TypeDeclarationInfo(
                Escape(current.Name),
                GetDeclarationKind(current),
                current.IsStatic,
                FormatTypeParameters(current)));
        }

        string? ns = type.ContainingNamespace is { IsGlobalNamespace: false } containingNamespace
            ? containingNamespace.ToDisplayString(NamespaceFormat)
            : null;
        return new HierarchyInfo(ns, types.ToImmutable().ToEquatableArray());
    }

    private static TypeDeclarationKind GetDeclarationKind(INamedTypeSymbol type) => type.TypeKind switch
    {
        TypeKind.Struct => type.IsRecord ? TypeDeclarationKind.RecordStruct : TypeDeclarationKind.Struct,
        TypeKind.Interface => TypeDeclarationKind.Interface,
        _ => type.IsRecord ? TypeDeclarationKind.RecordClass : TypeDeclarationKind.Class,
    };

    private static string FormatTypeParameters(INamedTypeSymbol type)
    {
        if (type.TypeParameters.IsDefaultOrEmpty)
        {
            return "";
        }

        StringBuilder builder = new("<");
        for (int i = 0; i < type.TypeParameters.Length; i++)
        {
            ITypeParameterSymbol parameter = type.TypeParameters[i];
            if (i > 0)
            {
                builder.Append(", ");
            }

            // Variance must be repeated on every part of a partial interface.
            builder.Append(parameter.Variance switch
            {
                VarianceKind.In => "in ",
                VarianceKind.Out => "out ",
                _ => "",
            });
            builder.Append(Escape(parameter.Name));
        }

        return builder.Append('>').ToString();
    }

    /// <summary>
    /// A file-safe hint name from the fully qualified metadata name (<c>Ns.Outer`1+Sheet</c> becomes
    /// <c>Ns.Outer-1+Sheet.g.cs</c>). Distinct names stay distinct: <c>-</c> cannot occur in an identifier, so it marks
    /// both the arity and any other character escaped as <c>-uXXXX</c>.
    /// </summary>
    private static string GetHintName(INamedTypeSymbol type)
    {
        string metadataName = type.MetadataName;
        for (INamedTypeSymbol? containing = type.ContainingType; containing is not null; containing = containing.ContainingType)
        {
            metadataName = containing.MetadataName + "+" + metadataName;
        }

        for (INamespaceSymbol? ns = type.ContainingNamespace; ns is { IsGlobalNamespace: false }; ns = ns.ContainingNamespace)
        {
            metadataName = ns.MetadataName + "." + metadataName;
        }

        StringBuilder builder = new(metadataName.Length + 5);
        foreach (char c in metadataName)
        {
            if (c == '`')
            {
                builder.Append('-');
            }
            else if ((c < 128 && char.IsLetterOrDigit(c)) || c is '.' or '_' or '+')
            {
                builder.Append(c);
            }
            else
            {
                builder.Append("-u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            }
        }

        if (HasCaseInsensitiveNamesake(type))
        {
            // Hint names are compared ignoring case (files may land on a case-insensitive disk): Demo.Sheet and
            // Demo.sheet, or Demo.Sheet and demo.Sheet, each get a suffix from their exact name.
            builder.Append('.').Append(Fnv1a(metadataName).ToString("x8", CultureInfo.InvariantCulture));
        }

        return builder.Append(".g.cs").ToString();
    }

    /// <summary>Whether the type, or a namespace or type containing it, has a sibling whose name differs only by case.</summary>
    private static bool HasCaseInsensitiveNamesake(INamedTypeSymbol type)
    {
        for (INamespaceOrTypeSymbol current = type; current.ContainingSymbol is INamespaceOrTypeSymbol container; current = container)
        {
            string name = current.MetadataName;
            foreach (ISymbol sibling in container.GetMembers())
            {
                if (sibling is INamespaceOrTypeSymbol
                    && sibling.MetadataName.Length == name.Length
                    && !string.Equals(sibling.MetadataName, name, System.StringComparison.Ordinal)
                    && string.Equals(sibling.MetadataName, name, System.StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static uint Fnv1a(string text)
    {
        uint hash = 2166136261;
        foreach (char c in text)
        {
            hash = unchecked((hash ^ c) * 16777619);
        }

        return hash;
    }

    private static string JoinModifiers(SyntaxTokenList modifiers)
    {
        StringBuilder builder = new();
        foreach (SyntaxToken modifier in modifiers)
        {
            if (builder.Length > 0)
            {
                builder.Append(' ');
            }

            builder.Append(modifier.ValueText);
        }

        return builder.ToString();
    }

    private static string Escape(string identifier)
        => SyntaxFacts.GetKeywordKind(identifier) == SyntaxKind.None ? identifier : "@" + identifier;
}
