using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using SharedEntities.CodeAnalysis;

namespace SharedEntities.Analyzers;

/// <summary>
/// SE0001–SE0006: a <c>[SharedEntity]</c> declaration the generator cannot serve. The questions are the generator's
/// own (<see cref="SharedEntityShape"/>), so what the generator refuses is exactly what is reported here. Independent
/// problems are all reported; an unsupported kind of type is reported alone.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class SharedEntityDeclarationAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.TypeNotPartial,
        DiagnosticDescriptors.ContainingTypeNotPartial,
        DiagnosticDescriptors.NoKey,
        DiagnosticDescriptors.UnsupportedSharedProperty,
        DiagnosticDescriptors.UnsupportedTypeKind,
        DiagnosticDescriptors.KeyOrVersionNotPlain);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            if (KnownSymbols.TryCreate(start.Compilation) is not { } symbols)
            {
                return;
            }

            start.RegisterSymbolAction(context => AnalyzeType(context, symbols), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolAnalysisContext context, KnownSymbols symbols)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        CancellationToken cancellationToken = context.CancellationToken;

        // SE0002 is reported while analyzing the containing type, so that it lies within the symbol it is about (a
        // diagnostic outside its symbol is not local, and the IDE offers no fix for it).
        if (!type.GetTypeMembers().IsEmpty
            && FindNestedSharedEntity(type, symbols) is { } nested
            && !SharedEntityShape.IsPartial(type, cancellationToken))
        {
            Report(context, DiagnosticDescriptors.ContainingTypeNotPartial, type.Locations, type.Name, nested.Name);
        }

        AttributeData? attribute = FindAttribute(type, symbols.SharedEntityAttribute);
        if (attribute is null)
        {
            return;
        }

        if (UnsupportedKindReason(type) is { } kindReason)
        {
            Report(context, DiagnosticDescriptors.UnsupportedTypeKind, type.Locations, type.Name, kindReason);
            return;
        }

        if (!SharedEntityShape.IsPartial(type, cancellationToken))
        {
            foreach (SyntaxReference reference in type.DeclaringSyntaxReferences)
            {
                if (reference.GetSyntax(cancellationToken) is TypeDeclarationSyntax declaration && !declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
                {
                    context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.TypeNotPartial, declaration.Identifier.GetLocation(), type.Name));
                }
            }
        }

        // The problems the shape file only reports in order (a usable key, a read-write version, the attribute's
        // arguments) come from its verdict; the independent ones above and below are reported all at once.
        EntityShapeProblem problem = SharedEntityShape.GetEntityProblem(type, cancellationToken);
        AnalyzeKeyAndVersion(context, type, problem);
        if (problem == EntityShapeProblem.InvalidAttributeArguments)
        {
            Location location = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation() ?? type.Locations[0];
            context.ReportDiagnostic(Diagnostic.Create(
                DiagnosticDescriptors.UnsupportedTypeKind,
                location,
                type.Name,
                "the attribute's Name must be a non-empty string (it names the entity in store keys)"));
        }

        foreach (ISymbol member in type.GetMembers())
        {
            if (member is IPropertySymbol property
                && SharedEntityShape.IsSharedPropertyDefinition(property)
                && !SharedEntityShape.IsSupportedSharedProperty(property, out SharedPropertyProblem propertyProblem)
                && SharedPropertyReason(propertyProblem) is { } reason)
            {
                Report(context, DiagnosticDescriptors.UnsupportedSharedProperty, property.Locations, property.Name, reason);
            }
        }
    }

    private static void AnalyzeKeyAndVersion(SymbolAnalysisContext context, INamedTypeSymbol type, EntityShapeProblem problem)
    {
        IPropertySymbol? key = SharedEntityShape.FindKey(type);
        if (key is null)
        {
            Report(context, DiagnosticDescriptors.NoKey, type.Locations, type.Name,
                "has no key: add a property marked [Key], or named Id or " + type.Name + "Id");
        }
        else if (SharedEntityShape.IsPartialProperty(key))
        {
            ReportOnDeclaringType(context, type, key, "key", "is declared partial: a key is never shared; declare it as a plain property");
        }
        else if (problem == EntityShapeProblem.KeyNotUsable && !SharedEntityShape.ContainsErrorType(key.Type))
        {
            Report(context, DiagnosticDescriptors.NoKey, LocationsIn(type, key), type.Name,
                "cannot use '" + key.Name + "' as its key: a key needs a getter the type can call and a type that can be boxed (not by-ref, ref struct or pointer)");
        }

        IPropertySymbol? version = SharedEntityShape.FindVersion(type);
        if (version is null)
        {
            return;
        }

        if (SharedEntityShape.IsPartialProperty(version))
        {
            ReportOnDeclaringType(context, type, version, "version", "is declared partial: the version is never shared; declare it as a plain property");
        }
        else if (problem == EntityShapeProblem.VersionNotReadWrite)
        {
            ReportOnDeclaringType(context, type, version, "version", "needs a getter and a setter (not init) that the type can call: the runtime writes the new version on commit");
        }
    }

    private static void ReportOnDeclaringType(SymbolAnalysisContext context, INamedTypeSymbol type, IPropertySymbol property, string role, string problem)
    {
        context.ReportDiagnostic(Diagnostic.Create(
            DiagnosticDescriptors.KeyOrVersionNotPlain,
            LocationsIn(type, property)[0],
            ImmutableDictionary<string, string?>.Empty.Add("Role", role),
            property.Name,
            role,
            type.Name,
            problem));
    }

    /// <summary>The property's identifier when it is declared in this type's source; else the type's (an inherited key).</summary>
    private static ImmutableArray<Location> LocationsIn(INamedTypeSymbol type, IPropertySymbol property)
        => SymbolEqualityComparer.Default.Equals(property.ContainingType.OriginalDefinition, type.OriginalDefinition)
            && property.Locations.Length > 0 && property.Locations[0].IsInSource
                ? property.Locations
                : type.Locations;

    private static void Report(SymbolAnalysisContext context, DiagnosticDescriptor descriptor, ImmutableArray<Location> locations, params object[] arguments)
    {
        if (!locations.IsDefaultOrEmpty && locations[0].IsInSource)
        {
            context.ReportDiagnostic(Diagnostic.Create(descriptor, locations[0], arguments));
        }
    }

    private static INamedTypeSymbol? FindNestedSharedEntity(INamedTypeSymbol type, KnownSymbols symbols)
    {
        foreach (INamedTypeSymbol member in type.GetTypeMembers())
        {
            if (FindAttribute(member, symbols.SharedEntityAttribute) is not null)
            {
                return member;
            }

            if (FindNestedSharedEntity(member, symbols) is { } deeper)
            {
                return deeper;
            }
        }

        return null;
    }

    private static AttributeData? FindAttribute(INamedTypeSymbol type, INamedTypeSymbol attributeType)
    {
        foreach (AttributeData attribute in type.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, attributeType))
            {
                return attribute;
            }
        }

        return null;
    }

    /// <summary>Why the kind of type cannot be served, in the user's words; <see langword="null"/> when it can.</summary>
    private static string? UnsupportedKindReason(INamedTypeSymbol type)
    {
        if (!SharedEntityShape.IsSupportedTypeKind(type))
        {
            return type switch
            {
                { IsRecord: true } => "it is a record; declare it as a partial class",
                { TypeKind: TypeKind.Struct } => "it is a struct; shared entities are classes, shared by reference",
                { TypeKind: TypeKind.Interface } => "it is an interface; mark the implementing class",
                { IsStatic: true } => "it is a static class; shared entities are instances",
                { TypeKind: not TypeKind.Class } => "it is not a class",
                _ => "it is file-local (or nested in a file-local type), so no generated part can be added to it",
            };
        }

        if (SharedEntityShape.DerivesFromSharedEntity(type))
        {
            for (INamedTypeSymbol? baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
            {
                if (SharedEntityShape.FindSharedEntityAttribute(baseType) is not null)
                {
                    return "it derives from the shared entity '" + baseType.Name + "'; only one class of a hierarchy can be a shared entity";
                }
            }
        }

        return null;
    }

    private static string? SharedPropertyReason(SharedPropertyProblem problem) => problem switch
    {
        SharedPropertyProblem.Static => "it is static, and sharing is per entity instance",
        SharedPropertyProblem.Indexer => "it is an indexer",
        SharedPropertyProblem.ReturnsByRef => "it returns by reference, so writes would bypass the generated accessor",
        SharedPropertyProblem.RefLikeType => "its type is a ref struct, which a class cannot store",
        SharedPropertyProblem.PointerType => "its type is a pointer",
        SharedPropertyProblem.ExplicitInterfaceImplementation => "it is an explicit interface implementation",
        SharedPropertyProblem.Abstract => "it is abstract",
        _ => null, // None; ErrorType is the compiler's to report
    };
}
