using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Metadata.Conventions;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// Maps every <c>[SharedEntity]</c> class of the model: each shared property to its generated backing field with
/// field access (EF Core never calls the generated accessors, which check freshness and record user writes), and the
/// version property as a concurrency token. Explicit configuration (<c>HasField</c>, <c>IsConcurrencyToken</c>) wins.
/// </summary>
public sealed class SharedEntityConvention : IModelFinalizingConvention
{
    /// <inheritdoc/>
    public void ProcessModelFinalizing(IConventionModelBuilder modelBuilder, IConventionContext<IConventionModelBuilder> context)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        foreach (IConventionEntityType entityType in modelBuilder.Metadata.GetEntityTypes())
        {
            if (SharedTypeOf(entityType.ClrType) is not { } shared)
            {
                continue;
            }

            foreach (SharedPropertyInfo property in shared.Properties)
            {
                IConventionPropertyBuilder? builder = entityType.FindProperty(property.Name)?.Builder
                    ?? entityType.Builder.Property(property.PropertyType, property.Name);
                builder?.HasField(property.FieldName);
                builder?.UsePropertyAccessMode(PropertyAccessMode.Field);
            }

            if (shared.VersionProperty is { } version)
            {
                entityType.FindProperty(version)?.Builder.IsConcurrencyToken(true);
            }

            foreach (IConventionNavigation navigation in entityType.GetNavigations())
            {
                if (navigation.ForeignKey.IsOwnership && !navigation.IsOnDependent && navigation.IsCollection)
                {
                    // Owned references are saved under the owner's version and reloaded with it; an owned collection
                    // changed by another process could not be reloaded item by item.
                    throw new InvalidOperationException(
                        $"The shared entity {entityType.DisplayName()} owns a collection ({navigation.Name}), which SharedEntities cannot reload when " +
                        $"another process changes it. Map {navigation.TargetEntityType.DisplayName()} as an entity of its own (a one-to-many relationship), " +
                        "or as an owned reference.");
                }
            }
        }
    }

    /// <summary>The generated descriptor of <paramref name="clrType"/>, or <see langword="null"/> if it is not a shared entity.</summary>
    internal static SharedEntityType? SharedTypeOf(Type clrType) =>
        typeof(ISharedEntity).IsAssignableFrom(clrType) && !clrType.IsAbstract && !clrType.IsInterface
            ? ((ISharedEntity)RuntimeHelpers.GetUninitializedObject(clrType)).SharedType
            : null;
}

/// <summary>Adds <see cref="SharedEntityConvention"/> to the model's conventions.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1812", Justification = "Created by EF Core's service provider.")]
internal sealed class SharedEntitiesConventionSetPlugin : IConventionSetPlugin
{
    public ConventionSet ModifyConventions(ConventionSet conventionSet)
    {
        conventionSet.ModelFinalizingConventions.Add(new SharedEntityConvention());
        return conventionSet;
    }
}
