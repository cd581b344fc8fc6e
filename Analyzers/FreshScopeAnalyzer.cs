using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace SharedEntities.Analyzers;

/// <summary>
/// SE0100 (read of a shared property outside a fresh scope), SE0102 (use of a <c>[RequiresFreshScope]</c> member
/// outside one) and SE0103 (write of a shared property outside one). "Inside" is lexical; see <see cref="FreshScopeLocator"/>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class FreshScopeAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        DiagnosticDescriptors.ReadOutsideScope,
        DiagnosticDescriptors.RequiresFreshScopeCall,
        DiagnosticDescriptors.WriteOutsideScope);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            if (KnownSymbols.TryCreate(start.Compilation) is not { FreshScope: not null } symbols)
            {
                return;
            }

            start.RegisterOperationAction(context => AnalyzePropertyReference(context, symbols), OperationKind.PropertyReference);
            if (symbols.RequiresFreshScopeAttribute is not null)
            {
                start.RegisterOperationAction(
                    context => AnalyzeMemberUse(context, symbols),
                    OperationKind.Invocation,
                    OperationKind.ObjectCreation);
            }
        });
    }

    private static void AnalyzePropertyReference(OperationAnalysisContext context, KnownSymbols symbols)
    {
        var reference = (IPropertyReferenceOperation)context.Operation;
        IPropertySymbol property = reference.Property;

        // Cheap, cached questions about the symbol first: most property references in a compilation are neither.
        bool requiresScope = symbols.RequiresFreshScope(property);
        if (!requiresScope && !symbols.IsSharedProperty(property))
        {
            return;
        }

        PropertyAccess access = PropertyAccessKind.Of(reference);
        if (access == PropertyAccess.None
            || FreshScopeLocator.IsInside(reference, context.ContainingSymbol, property.ContainingType, symbols))
        {
            return;
        }

        if (requiresScope)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.RequiresFreshScopeCall, reference.Syntax.GetLocation(), property.Name));
            return;
        }

        Location location = reference.Syntax.GetLocation();
        if ((access & PropertyAccess.Read) != 0)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.ReadOutsideScope, location, property.Name));
        }

        if ((access & PropertyAccess.Write) != 0)
        {
            context.ReportDiagnostic(Diagnostic.Create(DiagnosticDescriptors.WriteOutsideScope, location, property.Name));
        }
    }

    private static void AnalyzeMemberUse(OperationAnalysisContext context, KnownSymbols symbols)
    {
        IMethodSymbol? method = context.Operation switch
        {
            IInvocationOperation invocation => invocation.TargetMethod,
            IObjectCreationOperation creation => creation.Constructor,
            _ => null,
        };

        if (method is null
            || !symbols.RequiresFreshScope(method)
            || FreshScopeLocator.IsInside(context.Operation, context.ContainingSymbol, method.ContainingType, symbols))
        {
            return;
        }

        context.ReportDiagnostic(Diagnostic.Create(
            DiagnosticDescriptors.RequiresFreshScopeCall,
            context.Operation.Syntax.GetLocation(),
            method.MethodKind == MethodKind.Constructor ? method.ContainingType.Name : method.Name));
    }
}
