using System.Collections.Immutable;
using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using SharedEntities.Analyzers;

namespace SharedEntities.CodeFixes;

/// <summary>
/// SE0006: makes the key or version a plain property. A partial definition without a user-written implementation
/// becomes an auto-property; one with a user-written implementation part gives way to that part, which keeps its
/// accessor bodies and loses <see langword="partial"/>.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(RemovePartialFromKeyCodeFixProvider)), Shared]
public sealed class RemovePartialFromKeyCodeFixProvider : CodeFixProvider
{
    private const string EquivalenceKey = "SharedEntities.RemovePartialFromKeyOrVersion";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(DiagnosticIds.KeyOrVersionNotPlain);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            if (root?.FindToken(diagnostic.Location.SourceSpan.Start).Parent is PropertyDeclarationSyntax property
                && property.Identifier.Span == diagnostic.Location.SourceSpan
                && property.Modifiers.Any(SyntaxKind.PartialKeyword))
            {
                context.RegisterCodeFix(
                    CodeAction.Create(
                        $"Make '{property.Identifier.ValueText}' a plain property (not partial)",
                        cancellationToken => FixAsync(context.Document, property, cancellationToken),
                        EquivalenceKey),
                    diagnostic);
            }
        }
    }

    private static async Task<Solution> FixAsync(Document document, PropertyDeclarationSyntax property, CancellationToken cancellationToken)
    {
        Solution solution = document.Project.Solution;
        SemanticModel? model = await document.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
        IPropertySymbol? symbol = model?.GetDeclaredSymbol(property, cancellationToken);
        IPropertySymbol? definition = symbol?.PartialDefinitionPart ?? symbol;
        SyntaxReference? implementation = definition?.PartialImplementationPart?.DeclaringSyntaxReferences.FirstOrDefault();
        Document? implementationDocument = implementation is null ? null : solution.GetDocument(implementation.SyntaxTree);

        if (implementation is null || implementationDocument is null
            || definition!.DeclaringSyntaxReferences.FirstOrDefault() is not { } definitionReference)
        {
            // Only the definition exists here (the generator's part, if any, follows the declaration): drop 'partial'.
            SyntaxNode root = (await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false))!;
            return solution.WithDocumentSyntaxRoot(document.Id, root.ReplaceNode(property, RemovePartial(property)));
        }

        // The user wrote both parts: keep the implementation as the plain property and delete the definition.
        var definitionNode = (PropertyDeclarationSyntax)await definitionReference.GetSyntaxAsync(cancellationToken).ConfigureAwait(false);
        var implementationNode = (PropertyDeclarationSyntax)await implementation.GetSyntaxAsync(cancellationToken).ConfigureAwait(false);
        DocumentId definitionDocument = solution.GetDocument(definitionReference.SyntaxTree)!.Id;
        if (definitionDocument == implementationDocument.Id)
        {
            SyntaxNode root = (await implementationDocument.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false))!;
            root = root.TrackNodes(definitionNode, implementationNode);
            root = root.ReplaceNode(root.GetCurrentNode(implementationNode)!, RemovePartial(implementationNode));
            root = root.RemoveNode(root.GetCurrentNode(definitionNode)!, SyntaxRemoveOptions.KeepNoTrivia)!;
            return solution.WithDocumentSyntaxRoot(implementationDocument.Id, root);
        }

        SyntaxNode implementationRoot = (await implementationDocument.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false))!;
        SyntaxNode definitionRoot = (await definitionReference.SyntaxTree.GetRootAsync(cancellationToken).ConfigureAwait(false))!;
        return solution
            .WithDocumentSyntaxRoot(implementationDocument.Id, implementationRoot.ReplaceNode(implementationNode, RemovePartial(implementationNode)))
            .WithDocumentSyntaxRoot(definitionDocument, definitionRoot.RemoveNode(definitionNode, SyntaxRemoveOptions.KeepNoTrivia)!);
    }

    private static PropertyDeclarationSyntax RemovePartial(PropertyDeclarationSyntax property)
    {
        int index = property.Modifiers.IndexOf(SyntaxKind.PartialKeyword);
        SyntaxToken partial = property.Modifiers[index];
        SyntaxTokenList modifiers = property.Modifiers.RemoveAt(index);

        // 'partial' first: its indentation moves to what follows it.
        if (index == 0)
        {
            return modifiers.Count > 0
                ? property.WithModifiers(modifiers.Replace(modifiers[0], modifiers[0].WithLeadingTrivia(partial.LeadingTrivia)))
                : property.WithModifiers(modifiers).WithType(property.Type.WithLeadingTrivia(partial.LeadingTrivia));
        }

        return property.WithModifiers(modifiers);
    }
}
