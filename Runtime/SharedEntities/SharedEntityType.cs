using System.Collections.Immutable;

namespace SharedEntities;

/// <summary>
/// What the generator knows about one <c>[SharedEntity]</c> class: its store name, key, optional version and the
/// shared properties in declaration order (the indexes of <see cref="ISharedEntity.GetSharedValue"/>).
/// </summary>
public sealed class SharedEntityType
{
    /// <summary>Creates the descriptor. Called by generated code.</summary>
    public SharedEntityType(
        string name,
        Type clrType,
        string keyProperty,
        string? versionProperty,
        IEnumerable<SharedPropertyInfo> properties)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(clrType);
        ArgumentException.ThrowIfNullOrEmpty(keyProperty);
        ArgumentNullException.ThrowIfNull(properties);
        Name = name;
        ClrType = clrType;
        KeyProperty = keyProperty;
        VersionProperty = versionProperty;
        Properties = [.. properties];
    }

    /// <summary>The entity name used in store keys.</summary>
    public string Name { get; }

    /// <summary>The entity class.</summary>
    public Type ClrType { get; }

    /// <summary>The name of the key property.</summary>
    public string KeyProperty { get; }

    /// <summary>The name of the version property, or <see langword="null"/> for a serial-only entity.</summary>
    public string? VersionProperty { get; }

    /// <summary>Versioned when the type has a version property, serial-only otherwise.</summary>
    public SharedEntityMode Mode => VersionProperty is null ? SharedEntityMode.SerialOnly : SharedEntityMode.Versioned;

    /// <summary>The shared properties, in declaration order.</summary>
    public ImmutableArray<SharedPropertyInfo> Properties { get; }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
