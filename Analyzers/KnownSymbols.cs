using System.Collections.Concurrent;
using Microsoft.CodeAnalysis;
using SharedEntities.CodeAnalysis;

namespace SharedEntities.Analyzers;

/// <summary>
/// The runtime's marker types, resolved once per compilation, and the questions the usage rules ask about symbols.
/// <see cref="TryCreate"/> returns <see langword="null"/> when the runtime is not referenced: then no rule runs.
/// </summary>
internal sealed class KnownSymbols
{
    private const string GeneratorName = "SharedEntities.Generator";

    private readonly ConcurrentDictionary<IPropertySymbol, bool> _sharedProperties = new(SymbolEqualityComparer.Default);
    private readonly ConcurrentDictionary<ISymbol, bool> _requiresScope = new(SymbolEqualityComparer.Default);
    private readonly Func<IPropertySymbol, bool> _computeIsSharedProperty;
    private readonly Func<ISymbol, bool> _computeRequiresFreshScope;

    private KnownSymbols(
        INamedTypeSymbol sharedEntityAttribute,
        INamedTypeSymbol? requiresFreshScopeAttribute,
        INamedTypeSymbol? freshScope,
        INamedTypeSymbol? coherence,
        INamedTypeSymbol? generatedCodeAttribute)
    {
        SharedEntityAttribute = sharedEntityAttribute;
        RequiresFreshScopeAttribute = requiresFreshScopeAttribute;
        FreshScope = freshScope;
        Coherence = coherence;
        GeneratedCodeAttribute = generatedCodeAttribute;
        _computeIsSharedProperty = ComputeIsSharedProperty;
        _computeRequiresFreshScope = ComputeRequiresFreshScope;
    }

    public INamedTypeSymbol SharedEntityAttribute { get; }

    public INamedTypeSymbol? RequiresFreshScopeAttribute { get; }

    public INamedTypeSymbol? FreshScope { get; }

    public INamedTypeSymbol? Coherence { get; }

    private INamedTypeSymbol? GeneratedCodeAttribute { get; }

    public static KnownSymbols? TryCreate(Compilation compilation)
    {
        INamedTypeSymbol? attribute = compilation.GetTypeByMetadataName(SharedEntityShape.AttributeMetadataName);
        return attribute is null
            ? null
            : new KnownSymbols(
                attribute,
                compilation.GetTypeByMetadataName("SharedEntities.RequiresFreshScopeAttribute"),
                compilation.GetTypeByMetadataName("SharedEntities.FreshScope"),
                compilation.GetTypeByMetadataName("SharedEntities.Coherence"),
                compilation.GetTypeByMetadataName("System.CodeDom.Compiler.GeneratedCodeAttribute"));
    }

    public bool IsSharedEntityType(ITypeSymbol? type)
        => type is INamedTypeSymbol named && HasAttribute(named.OriginalDefinition, SharedEntityAttribute);

    public bool IsFreshScope(ITypeSymbol? type)
        => type is not null && FreshScope is not null && SymbolEqualityComparer.Default.Equals(type, FreshScope);

    /// <summary>
    /// Whether <paramref name="property"/> is a shared property: in source, a partial definition the generator serves
    /// (the shape file's own predicate); from metadata, a property of a <c>[SharedEntity]</c> type whose accessor the
    /// generator wrote (it carries the generator's <c>[GeneratedCode]</c>).
    /// </summary>
    public bool IsSharedProperty(IPropertySymbol property)
    {
        property = property.OriginalDefinition;
        if (property.PartialDefinitionPart is { } definition)
        {
            property = definition;
        }

        return _sharedProperties.GetOrAdd(property, _computeIsSharedProperty);
    }

    /// <summary>Whether a method, constructor or property (or what it overrides, or an accessor's property) is marked <c>[RequiresFreshScope]</c>.</summary>
    public bool RequiresFreshScope(ISymbol? symbol)
    {
        if (symbol is null || RequiresFreshScopeAttribute is null)
        {
            return false;
        }

        return symbol.Kind is SymbolKind.Method or SymbolKind.Property
            && _requiresScope.GetOrAdd(symbol.OriginalDefinition, _computeRequiresFreshScope);
    }

    /// <summary>Whether the delegate type's first parameter is the scope: a lambda passed as such a parameter runs in a scope.</summary>
    public bool IsScopeRunningDelegate(ITypeSymbol? type)
        => type is INamedTypeSymbol { TypeKind: TypeKind.Delegate, DelegateInvokeMethod: { Parameters: { Length: > 0 } parameters } }
            && IsFreshScope(parameters[0].Type);

    private bool ComputeIsSharedProperty(IPropertySymbol property)
    {
        if (property.IsStatic || property.IsIndexer || !IsSharedEntityType(property.ContainingType))
        {
            return false;
        }

        if (property.Locations.Length > 0 && property.Locations[0].IsInSource)
        {
            return SharedEntityShape.IsSharedPropertyDefinition(property)
                && SharedEntityShape.IsSupportedSharedProperty(property, out _);
        }

        return GeneratedCodeAttribute is not null && IsGeneratedBySharedEntities(property);
    }

    private bool IsGeneratedBySharedEntities(IPropertySymbol property)
    {
        foreach (AttributeData attribute in property.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, GeneratedCodeAttribute)
                && attribute.ConstructorArguments.Length > 0
                && attribute.ConstructorArguments[0].Value is string tool
                && tool == GeneratorName)
            {
                return true;
            }
        }

        return false;
    }

    private bool ComputeRequiresFreshScope(ISymbol symbol)
    {
        for (ISymbol? current = symbol; current is not null; current = Overridden(current))
        {
            if (HasAttribute(current, RequiresFreshScopeAttribute!))
            {
                return true;
            }

            if (current is IMethodSymbol { AssociatedSymbol: IPropertySymbol property } && RequiresFreshScope(property))
            {
                return true;
            }
        }

        return false;
    }

    private static ISymbol? Overridden(ISymbol symbol) => symbol switch
    {
        IMethodSymbol method => method.OverriddenMethod,
        IPropertySymbol property => property.OverriddenProperty,
        _ => null,
    };

    private static bool HasAttribute(ISymbol symbol, INamedTypeSymbol attributeType)
    {
        foreach (AttributeData attribute in symbol.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(attribute.AttributeClass, attributeType))
            {
                return true;
            }
        }

        return false;
    }
}
