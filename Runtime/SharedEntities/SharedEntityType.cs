using System.Collections.Immutable;

namespace SharedEntities;

/// <summary>
/// What the generator knows about one <c>[SharedEntity]</c> class: its store name, key, optional version and the
/// shared properties in declaration order (the indexes of <see cref="ISharedEntity.GetSharedValue"/>).
/// </summary>
public sealed class SharedEntityType
{
    /// <summary>Creates the descriptor. For the code the generator writes (warning SE9100 elsewhere).</summary>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)]
    [Obsolete(Internals.ForGeneratedCode.Message, DiagnosticId = Internals.ForGeneratedCode.DiagnosticId)]
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
        // A generic class is one entity per closed type (Cell<int> and Cell<string> are rows of different tables):
        // the type arguments are part of the name, so that their keys never meet in the store.
        Name = clrType.IsGenericType && !clrType.ContainsGenericParameters ? name + ArgumentsOf(clrType) : name;
        ClrType = clrType;
        KeyProperty = keyProperty;
        VersionProperty = versionProperty;
        Properties = [.. properties];
    }

    /// <summary>The entity name used in store keys: the declared name, followed for a generic class by its type arguments (<c>Cell`1&lt;System.Int32&gt;</c>).</summary>
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

    // Namespace-qualified and assembly-free, so that every process and every version of the application agrees.
    private static string ArgumentsOf(Type type) => "<" + string.Join(",", type.GenericTypeArguments.Select(StableName)) + ">";

    private static string StableName(Type type)
    {
        if (type.IsArray)
        {
            return StableName(type.GetElementType()!) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
        }

        string name = type.IsNested ? StableName(type.DeclaringType!) + "+" + type.Name : (type.Namespace is { } ns ? ns + "." : "") + type.Name;
        return type.IsGenericType && !type.ContainsGenericParameters ? name + ArgumentsOf(type) : name;
    }
}
