using System;
using Microsoft.CodeAnalysis;
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
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
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

            try
            {
                context.AddSource(model.HintName, SharedEntityEmitter.Emit(model));
            }
            catch (ArgumentException)
            {
                // Two distinct types with one metadata name (a duplicate declaration the compiler already reports)
                // would reuse a hint name; the first keeps it.
            }
        });
    }
}
