using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using SharedEntities.CodeAnalysis;

namespace SharedEntities.Generator;

/// <summary>
/// Implements the partial properties of <c>[SharedEntity]</c> classes as shared accessors, and the entity's
/// <c>ISharedEntity</c> wiring. Reports nothing: the analyzers own every diagnostic, from the same predicates
/// (<see cref="SharedEntityShape"/>), and a declaration that cannot be served gets only plain implementations.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class SharedEntityGenerator : IIncrementalGenerator
{
    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValuesProvider<EntityModel?> models = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                SharedEntityShape.AttributeMetadataName,
                static (node, _) => node is ClassDeclarationSyntax
                    || (node is RecordDeclarationSyntax record && !record.ClassOrStructKeyword.IsKind(SyntaxKind.StructKeyword)),
                static (context, cancellationToken) => SharedEntityParser.Parse(context, cancellationToken))
            .WithTrackingName(TrackingNames.Extract)
            .Where(static model => model is not null)
            .WithTrackingName(TrackingNames.RemoveNulls);

        context.RegisterSourceOutput(models, static (context, model) =>
        {
            if (model is null)
            {
                return;
            }

            // Hint names are unique: the parser gives duplicate types (CS0101) no file, and escapes or suffixes
            // names that could collide (RobustnessTests cover both).
            context.AddSource(model.HintName, SharedEntityEmitter.Emit(model));
        });
    }
}
