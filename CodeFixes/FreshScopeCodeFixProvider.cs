using System.Collections.Immutable;
using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Editing;
using Microsoft.CodeAnalysis.Simplification;
using SharedEntities.Analyzers;

namespace SharedEntities.CodeFixes;

/// <summary>
/// SE0100, SE0102 and SE0103. Two fixes, each offered where it applies:
/// <list type="bullet">
/// <item>begin a scope: <c>using var scope = coherence.BeginScope();</c> (<c>await using</c> in an async function)
/// before the statement, so that it covers the statement and the rest of its block, when a <c>Coherence</c> is in
/// reach (a local, parameter, field or property);</item>
/// <item>mark the containing method, local function, constructor or property <c>[RequiresFreshScope]</c>, which
/// moves the question to its callers (SE0102).</item>
/// </list>
/// There is no Fix All: scopes are placed one decision at a time.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(FreshScopeCodeFixProvider)), Shared]
public sealed class FreshScopeCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of the "begin a scope" fix.</summary>
    public const string BeginScopeKey = "SharedEntities.BeginScope";

    /// <summary>The equivalence key of the "mark [RequiresFreshScope]" fix.</summary>
    public const string MarkKey = "SharedEntities.MarkRequiresFreshScope";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(
        DiagnosticIds.ReadOutsideScope, DiagnosticIds.RequiresFreshScopeCall, DiagnosticIds.WriteOutsideScope);

    /// <inheritdoc/>
    public override FixAllProvider? GetFixAllProvider() => null;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        Document document = context.Document;
        SyntaxNode? root = await document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        SemanticModel? model = await document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
        {
            return;
        }

        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            SyntaxNode node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
            SyntaxNode? function = EnclosingFunction(node);
            if (function is null)
            {
                continue;
            }

            if (FindCoherence(model, node, function, context.CancellationToken) is { } coherence
                && ScopeInsertion.Find(node, function) is { } insertion)
            {
                context.RegisterCodeFix(
                    CodeAction.Create(
                        $"Begin a fresh scope with '{coherence}.BeginScope()'",
                        _ => Task.FromResult(document.WithSyntaxRoot(insertion.Apply(root, model, coherence, IsAsync(function)))),
                        BeginScopeKey),
                    diagnostic);
            }

            if (MarkTarget(function) is { } target
                && model.Compilation.GetTypeByMetadataName("SharedEntities.RequiresFreshScopeAttribute") is { } attribute)
            {
                string name = target switch
                {
                    MethodDeclarationSyntax method => method.Identifier.ValueText,
                    LocalFunctionStatementSyntax local => local.Identifier.ValueText,
                    ConstructorDeclarationSyntax constructor => constructor.Identifier.ValueText,
                    PropertyDeclarationSyntax property => property.Identifier.ValueText,
                    _ => "the member",
                };
                context.RegisterCodeFix(
                    CodeAction.Create(
                        $"Mark '{name}' [RequiresFreshScope]",
                        cancellationToken => MarkAsync(document, target, attribute, cancellationToken),
                        MarkKey),
                    diagnostic);
            }
        }
    }

    /// <summary>The innermost method, local function, lambda, constructor, accessor or property body around the node.</summary>
    private static SyntaxNode? EnclosingFunction(SyntaxNode node)
    {
        foreach (SyntaxNode ancestor in node.AncestorsAndSelf())
        {
            switch (ancestor)
            {
                case AnonymousFunctionExpressionSyntax:
                case LocalFunctionStatementSyntax:
                case BaseMethodDeclarationSyntax:
                case AccessorDeclarationSyntax:
                    return ancestor;
                case PropertyDeclarationSyntax { ExpressionBody: not null } property:
                    return property;
                case MemberDeclarationSyntax or GlobalStatementSyntax:
                    return null;
            }
        }

        return null;
    }

    /// <summary>What <c>[RequiresFreshScope]</c> goes on: the function itself, or an accessor's property; never a lambda.</summary>
    private static SyntaxNode? MarkTarget(SyntaxNode function) => function switch
    {
        MethodDeclarationSyntax or LocalFunctionStatementSyntax or ConstructorDeclarationSyntax or PropertyDeclarationSyntax => function,
        AccessorDeclarationSyntax { Parent.Parent: PropertyDeclarationSyntax property } => property,
        _ => null,
    };

    private static bool IsAsync(SyntaxNode function) => function switch
    {
        MethodDeclarationSyntax method => method.Modifiers.Any(SyntaxKind.AsyncKeyword),
        LocalFunctionStatementSyntax local => local.Modifiers.Any(SyntaxKind.AsyncKeyword),
        AnonymousFunctionExpressionSyntax lambda => lambda.AsyncKeyword.IsKind(SyntaxKind.AsyncKeyword),
        _ => false,
    };

    /// <summary>A <c>Coherence</c> the code can name here: a local or parameter first, then a field or property.</summary>
    private static string? FindCoherence(SemanticModel model, SyntaxNode node, SyntaxNode function, CancellationToken cancellationToken)
    {
        INamedTypeSymbol? coherenceType = model.Compilation.GetTypeByMetadataName("SharedEntities.Coherence");
        if (coherenceType is null)
        {
            return null;
        }

        int position = node.SpanStart;
        bool isStatic = model.GetEnclosingSymbol(position, cancellationToken) is { } enclosing
            && (enclosing.IsStatic || enclosing.ContainingSymbol is IMethodSymbol { IsStatic: true });
        string? member = null;
        foreach (ISymbol symbol in model.LookupSymbols(position))
        {
            ITypeSymbol? type = symbol switch
            {
                ILocalSymbol local => local.Type,
                IParameterSymbol parameter => parameter.Type,
                IFieldSymbol field when !isStatic || field.IsStatic => field.Type,
                IPropertySymbol property when (!isStatic || property.IsStatic) && !property.IsIndexer => property.Type,
                _ => null,
            };

            if (!SymbolEqualityComparer.Default.Equals(type, coherenceType))
            {
                continue;
            }

            // A local declared after this statement is in lookup scope but not yet assigned.
            if (symbol is ILocalSymbol && symbol.Locations.Length > 0 && symbol.Locations[0].SourceSpan.Start > position)
            {
                continue;
            }

            if (symbol is ILocalSymbol or IParameterSymbol)
            {
                return symbol.Name;
            }

            member ??= symbol.Name;
        }

        return member;
    }

    private static async Task<Document> MarkAsync(Document document, SyntaxNode target, INamedTypeSymbol attribute, CancellationToken cancellationToken)
    {
        if (target is LocalFunctionStatementSyntax local)
        {
            // SyntaxGenerator puts a local function's attribute on the same line; put it on its own, as for methods.
            SyntaxTriviaList leading = local.GetLeadingTrivia();
            SyntaxTriviaList indentation = leading.Count > 0 && leading[leading.Count - 1].IsKind(SyntaxKind.WhitespaceTrivia)
                ? SyntaxFactory.TriviaList(leading[leading.Count - 1])
                : SyntaxFactory.TriviaList();
            SyntaxNode root = (await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false))!;
            SyntaxTrivia endOfLine = root.DescendantTrivia().FirstOrDefault(t => t.IsKind(SyntaxKind.EndOfLineTrivia));
            AttributeListSyntax list = SyntaxFactory.AttributeList(SyntaxFactory.SingletonSeparatedList(
                    SyntaxFactory.Attribute((NameSyntax)SyntaxGenerator.GetGenerator(document).TypeExpression(attribute))))
                .WithLeadingTrivia(leading)
                .WithTrailingTrivia(endOfLine.IsKind(SyntaxKind.EndOfLineTrivia) ? endOfLine : SyntaxFactory.LineFeed)
                .WithAdditionalAnnotations(Simplifier.Annotation, Simplifier.AddImportsAnnotation);
            LocalFunctionStatementSyntax marked = local.WithLeadingTrivia(indentation).WithAttributeLists(local.AttributeLists.Insert(0, list));
            return document.WithSyntaxRoot(root.ReplaceNode(local, marked));
        }

        DocumentEditor editor = await DocumentEditor.CreateAsync(document, cancellationToken).ConfigureAwait(false);
        SyntaxGenerator generator = editor.Generator;
        SyntaxNode attributeNode = generator.Attribute(generator.TypeExpression(attribute))
            .WithAdditionalAnnotations(Simplifier.Annotation, Simplifier.AddImportsAnnotation);
        editor.AddAttribute(target, attributeNode);
        return editor.GetChangedDocument();
    }
}
