using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace SharedEntities.Analyzers;

[Flags]
internal enum PropertyAccess
{
    /// <summary>Not an access at run time (<c>nameof</c>, an expression tree).</summary>
    None = 0,
    Read = 1,
    Write = 2,
}

/// <summary>Whether a property reference reads, writes or does both at run time.</summary>
internal static class PropertyAccessKind
{
    public static PropertyAccess Of(IPropertyReferenceOperation reference)
    {
        IOperation current = reference;
        IOperation? parent = reference.Parent;

        // A deconstruction target sits inside tuple expressions: (sheet.Title, x) = ...
        while (parent is ITupleOperation)
        {
            current = parent;
            parent = parent.Parent;
        }

        PropertyAccess access = parent switch
        {
            ISimpleAssignmentOperation assignment when assignment.Target == current => PropertyAccess.Write,
            IDeconstructionAssignmentOperation assignment when assignment.Target == current => PropertyAccess.Write,
            ICompoundAssignmentOperation assignment when assignment.Target == current => PropertyAccess.Read | PropertyAccess.Write,
            ICoalesceAssignmentOperation assignment when assignment.Target == current => PropertyAccess.Read | PropertyAccess.Write,
            IIncrementOrDecrementOperation => PropertyAccess.Read | PropertyAccess.Write,
            _ => PropertyAccess.Read,
        };

        return IsEvaluated(reference) ? access : PropertyAccess.None;
    }

    /// <summary>False inside <c>nameof</c> and inside a lambda converted to an expression tree (a query provider translates it).</summary>
    private static bool IsEvaluated(IOperation operation)
    {
        for (IOperation? current = operation.Parent; current is not null; current = current.Parent)
        {
            switch (current)
            {
                case INameOfOperation:
                    return false;
                case IAnonymousFunctionOperation function:
                    if (IsExpressionTree(function))
                    {
                        return false;
                    }

                    break;
            }
        }

        return true;
    }

    private static bool IsExpressionTree(IAnonymousFunctionOperation function)
    {
        // A lambda converted to Expression<T> is wrapped in a conversion to that type rather than a delegate creation.
        ITypeSymbol? type = function.Parent is IDelegateCreationOperation creation ? creation.Type : function.Parent?.Type;
        for (ITypeSymbol? t = type; t is not null; t = t.BaseType)
        {
            if (t is INamedTypeSymbol { Name: "Expression" or "LambdaExpression", ContainingNamespace: { Name: "Expressions", ContainingNamespace: { Name: "Linq", ContainingNamespace: { Name: "System", ContainingNamespace.IsGlobalNamespace: true } } } })
            {
                return true;
            }
        }

        return false;
    }
}
