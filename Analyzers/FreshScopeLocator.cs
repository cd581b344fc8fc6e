using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace SharedEntities.Analyzers;

/// <summary>
/// Decides, lexically, whether an operation runs inside a fresh scope. Inside means one of:
/// <list type="bullet">
/// <item>in the body of a <c>using</c>/<c>await using</c> statement whose resource is a <c>FreshScope</c>, or after a
/// <c>using</c> declaration of one, to the end of its block;</item>
/// <item>in a lambda passed as an argument whose delegate type takes the scope first (<c>Coherence.RunInScopeAsync</c>);</item>
/// <item>in a member, lambda or local function marked <c>[RequiresFreshScope]</c>;</item>
/// <item>in the members of the <c>[SharedEntity]</c> type that declares the target: those are judged at their callers.</item>
/// </list>
/// Any other lambda or local function is judged by itself, wherever it was written: it may run after the scope ended.
/// </summary>
internal static class FreshScopeLocator
{
    public static bool IsInside(IOperation operation, ISymbol containingSymbol, INamedTypeSymbol? targetType, KnownSymbols symbols)
    {
        if (targetType is not null && IsOwnMemberOfEntity(containingSymbol, targetType, symbols))
        {
            return true;
        }

        IOperation current = operation;
        for (IOperation? parent = operation.Parent; parent is not null; current = parent, parent = parent.Parent)
        {
            switch (parent)
            {
                case IUsingOperation usingStatement when usingStatement.Body == current && IsScopeResource(usingStatement.Resources, symbols):
                    return true;
                case IBlockOperation block when FollowsScopeDeclaration(block.Operations, current, symbols):
                    return true;
                case ISwitchCaseOperation section when FollowsScopeDeclaration(section.Body, current, symbols):
                    return true;
                case IAnonymousFunctionOperation function:
                    return ParameterTypeOfArgument(function) is { } delegateType && symbols.IsScopeRunningDelegate(delegateType)
                        || symbols.RequiresFreshScope(function.Symbol);
                case ILocalFunctionOperation localFunction:
                    return symbols.RequiresFreshScope(localFunction.Symbol);
            }
        }

        return symbols.RequiresFreshScope(containingSymbol);
    }

    /// <summary>The delegate type of the parameter a lambda is passed to, if it is passed directly as an argument.</summary>
    private static ITypeSymbol? ParameterTypeOfArgument(IAnonymousFunctionOperation function)
    {
        IOperation? parent = function.Parent;
        while (parent is IDelegateCreationOperation or IConversionOperation)
        {
            parent = parent.Parent;
        }

        return parent is IArgumentOperation { Parameter: { } parameter } ? parameter.Type : null;
    }

    private static bool IsOwnMemberOfEntity(ISymbol containingSymbol, INamedTypeSymbol targetType, KnownSymbols symbols)
    {
        INamedTypeSymbol target = targetType.OriginalDefinition;
        if (!symbols.IsSharedEntityType(target))
        {
            return false;
        }

        for (INamedTypeSymbol? type = containingSymbol as INamedTypeSymbol ?? containingSymbol.ContainingType; type is not null; type = type.ContainingType)
        {
            for (INamedTypeSymbol? current = type.OriginalDefinition; current is not null; current = current.BaseType?.OriginalDefinition)
            {
                if (SymbolEqualityComparer.Default.Equals(current, target))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool FollowsScopeDeclaration(ImmutableArray<IOperation> statements, IOperation current, KnownSymbols symbols)
    {
        foreach (IOperation statement in statements)
        {
            if (statement == current)
            {
                return false;
            }

            if (statement is IUsingDeclarationOperation declaration && IsScopeResource(declaration.DeclarationGroup, symbols))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsScopeResource(IOperation? resource, KnownSymbols symbols)
    {
        while (resource is IConversionOperation conversion)
        {
            if (symbols.IsFreshScope(conversion.Type))
            {
                return true;
            }

            resource = conversion.Operand;
        }

        switch (resource)
        {
            case null:
                return false;
            case IVariableDeclarationGroupOperation group:
                foreach (IVariableDeclarationOperation declaration in group.Declarations)
                {
                    foreach (IVariableDeclaratorOperation declarator in declaration.Declarators)
                    {
                        if (symbols.IsFreshScope(declarator.Symbol.Type))
                        {
                            return true;
                        }
                    }
                }

                return false;
            default:
                return symbols.IsFreshScope(resource.Type);
        }
    }
}
