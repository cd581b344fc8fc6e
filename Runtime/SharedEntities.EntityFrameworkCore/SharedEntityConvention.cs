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
/// Then refuses, while the model is built (the context's first use), a mapping the runtime cannot reload when another
/// process changes a row: each refusal names the type, the property and the fix (docs/efcore.md, "Mappings").
/// </summary>
public sealed class SharedEntityConvention : IModelFinalizingConvention
{
    /// <inheritdoc/>
    public void ProcessModelFinalizing(IConventionModelBuilder modelBuilder, IConventionContext<IConventionModelBuilder> context)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        var refusals = new List<string>();
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

            Refuse(entityType, shared, refusals);
        }

        if (refusals.Count > 0)
        {
            throw new InvalidOperationException(
                "SharedEntities cannot reload these mappings when another process changes a row:" + Environment.NewLine +
                string.Join(Environment.NewLine, refusals.Select(r => "- " + r)));
        }
    }

    // What the runtime's reloads and version-guarded writes cannot serve. Everything else reloads as EF Core reads it:
    // value converters, DateOnly, TPH and TPT hierarchies, constructor binding, proxies, complex and owned values of a
    // shared entity (these are not shared properties: they reload with the owner's row).
    private static void Refuse(IConventionEntityType entityType, SharedEntityType shared, List<string> refusals)
    {
        string type = entityType.DisplayName();
        if (entityType.IsOwned())
        {
            refusals.Add($"{type} is an owned type: a [SharedEntity] has a row and a version of its own. Fix: map {type} as an entity (a relationship), " +
                "or make it a plain class owned by a shared entity (it is then saved under the owner's version and reloaded with it).");
            return;
        }

        foreach (SharedPropertyInfo property in shared.Properties)
        {
            if (entityType.FindProperty(property.Name) is null)
            {
                string mappedAs = entityType.FindComplexProperty(property.Name) is not null ? "a complex property"
                    : entityType.FindNavigation(property.Name) is not null ? "a navigation"
                    : "nothing (it is ignored)";
                refusals.Add($"{type}.{property.Name} is shared (partial) but EF Core maps it as {mappedAs}: a shared property is one column. Fix: make " +
                    $"{property.Name} a plain (non-partial) property, or share the values it holds as partial properties of {type}, one column each.");
            }
        }

        foreach ((string? name, string role) in new[] { (shared.KeyProperty, "key"), (shared.VersionProperty, "version") })
        {
            if (name is not null && entityType.FindProperty(name)?.GetValueConverter() is { } converter)
            {
                refusals.Add($"{type}.{name}, the {role}, has a value converter ({converter.ModelClrType.Name} to {converter.ProviderClrType.Name}): the runtime " +
                    $"binds the {role} as a statement parameter and compares it as it is. Fix: map {name} as a plain {converter.ProviderClrType.Name}.");
            }
        }

        if (shared.VersionProperty is { } version && entityType.FindProperty(version) is null)
        {
            refusals.Add($"{type}.{version}, the version, is not mapped: every write of {type} is guarded by it. Fix: map {version} (do not Ignore it) " +
                $"and add its column with a migration (dotnet ef migrations add Add{shared.Name}{version}); for a table without one, remove the property " +
                "(the entity is then serial-only).");
        }

        if (entityType.GetMappingStrategy() == RelationalAnnotationNames.TpcMappingStrategy)
        {
            refusals.Add($"{type} is in a TPC hierarchy (UseTpcMappingStrategy): its rows are in one table per class, and the runtime reads a shared " +
                $"entity's version and columns from one table. Fix: map the hierarchy of {entityType.GetRootType().DisplayName()} as TPH (the default) or TPT.");
        }

        if (entityType.BaseType is null && entityType.GetTableName() is null)
        {
            refusals.Add($"{type} is not mapped to a table (ToView, ToSqlQuery or ToFunction): the runtime reads versions and reloads rows from the " +
                $"entity's table and guards writes to it. Fix: map {type} to its table (ToTable).");
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
