using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace SharedEntities.Analyzers;

/// <summary>
/// SE0101: a refresh (a scope's check, beginning or running a scope, EF Core <c>Entry(e).Reload</c>, a re-query of an
/// entity set already queried, or the first read of an entity's shared property, which checks it) after a read inside
/// a REPEATABLE READ, SERIALIZABLE or SNAPSHOT transaction, before that transaction ends. Such a transaction keeps
/// returning its snapshot: the refresh sees old data (the Django story of docs/diagnostics/SE0101.md). Lexical, one body at a time; a
/// lambda or local function body is a body of its own.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class StaleSnapshotAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(DiagnosticDescriptors.RefreshInsideSnapshot);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(static start =>
        {
            if (KnownSymbols.TryCreate(start.Compilation) is not { } symbols
                || TransactionSymbols.TryCreate(start.Compilation, symbols) is not { } transactions)
            {
                return;
            }

            // Most bodies begin no transaction: a cheap look at each invocation and creation decides whether the body
            // (its lambdas and local functions included) is walked at all.
            start.RegisterOperationBlockStartAction(block =>
            {
                var found = new StrongBox<bool>();
                block.RegisterOperationAction(
                    operation => found.Value |= transactions.MayBeginTransaction(operation.Operation),
                    OperationKind.Invocation,
                    OperationKind.ObjectCreation);
                block.RegisterOperationBlockEndAction(end =>
                {
                    if (!found.Value)
                    {
                        return;
                    }

                    foreach (IOperation body in end.OperationBlocks)
                    {
                        new SnapshotWalker(transactions, end.ReportDiagnostic, end.CancellationToken).AnalyzeBody(body);
                    }
                });
            });
        });
    }
}
