using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace SharedEntities.CodeFixes;

/// <summary>
/// Where "begin a scope" puts its <c>using var scope = coherence.BeginScope();</c>: before the statement (directly in a
/// block of the same function) that contains the diagnostic, or, for an expression-bodied method or local function, as
/// the first statement of a block body that replaces the expression.
/// </summary>
internal sealed class ScopeInsertion
{
    private readonly StatementSyntax? _statement;
    private readonly SyntaxNode? _expressionBodied;

    private ScopeInsertion(StatementSyntax? statement, SyntaxNode? expressionBodied)
    {
        _statement = statement;
        _expressionBodied = expressionBodied;
    }

    public static ScopeInsertion? Find(SyntaxNode node, SyntaxNode function)
    {
        for (SyntaxNode? current = node; current is not null && current != function; current = current.Parent)
        {
            if (current is StatementSyntax statement && statement.Parent is BlockSyntax)
            {
                return new ScopeInsertion(statement, null);
            }
        }

        return function switch
        {
            MethodDeclarationSyntax { ExpressionBody: not null } or LocalFunctionStatementSyntax { ExpressionBody: not null } => new ScopeInsertion(null, function),
            _ => null,
        };
    }

    public SyntaxNode Apply(SyntaxNode root, SemanticModel model, string coherence, bool isAsync)
    {
        SyntaxNode anchor = (SyntaxNode?)_statement ?? _expressionBodied!;
        string name = UniqueName(model, anchor.SpanStart);
        LocalDeclarationStatementSyntax declaration = LocalDeclarationStatement(
                VariableDeclaration(IdentifierName("var"))
                    .WithVariables(SingletonSeparatedList(
                        VariableDeclarator(name).WithInitializer(EqualsValueClause(
                            InvocationExpression(MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, IdentifierName(coherence), IdentifierName("BeginScope"))))))))
            .WithUsingKeyword(Token(SyntaxKind.UsingKeyword))
            .WithAwaitKeyword(isAsync ? Token(SyntaxKind.AwaitKeyword) : default)
            .WithAdditionalAnnotations(Formatter.Annotation);

        if (_statement is not null)
        {
            return root.InsertNodesBefore(_statement, [declaration.WithLeadingTrivia(_statement.GetLeadingTrivia())]);
        }

        (ArrowExpressionClauseSyntax arrow, TypeSyntax returnType) = _expressionBodied switch
        {
            MethodDeclarationSyntax method => (method.ExpressionBody!, method.ReturnType),
            LocalFunctionStatementSyntax local => (local.ExpressionBody!, local.ReturnType),
            _ => throw new InvalidOperationException(),
        };

        bool returnsValue = !(returnType is PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.VoidKeyword }
            || (isAsync && returnType is IdentifierNameSyntax { Identifier.ValueText: "Task" or "ValueTask" })
            || (isAsync && returnType is QualifiedNameSyntax { Right.Identifier.ValueText: "Task" or "ValueTask" }));
        ExpressionSyntax expression = arrow.Expression.WithoutTrivia();
        StatementSyntax body = returnsValue ? ReturnStatement(expression) : ExpressionStatement(expression);
        BlockSyntax block = Block(declaration, body).WithAdditionalAnnotations(Formatter.Annotation);

        SyntaxNode replacement = _expressionBodied switch
        {
            MethodDeclarationSyntax method => method.WithExpressionBody(null).WithSemicolonToken(default).WithBody(block)
                .WithParameterList(method.ParameterList.WithTrailingTrivia(ElasticLineFeed)),
            LocalFunctionStatementSyntax local => local.WithExpressionBody(null).WithSemicolonToken(default).WithBody(block)
                .WithParameterList(local.ParameterList.WithTrailingTrivia(ElasticLineFeed)),
            _ => throw new InvalidOperationException(),
        };

        return root.ReplaceNode(_expressionBodied!, replacement.WithAdditionalAnnotations(Formatter.Annotation));
    }

    private static string UniqueName(SemanticModel model, int position)
    {
        string name = "scope";
        for (int i = 2; model.LookupSymbols(position, name: name).Length > 0; i++)
        {
            name = "scope" + i;
        }

        return name;
    }
}
