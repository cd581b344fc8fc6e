using System.ComponentModel;
using SharedEntities.Internals;

namespace SharedEntities;

/// <summary>
/// Implemented by the generator on every <c>[SharedEntity]</c> class (explicitly, so it does not clutter the class's
/// own members). Loaders use it to read keys and to write loaded values without recording them as user writes.
/// </summary>
public interface ISharedEntity
{
    /// <summary>The generated descriptor of the entity's type.</summary>
    SharedEntityType SharedType { get; }

    /// <summary>The value of the key property.</summary>
    object SharedKey { get; }

    /// <summary>
    /// The runtime state that ties this instance to a <see cref="Coherence"/>; <see langword="null"/> until the
    /// instance is attached (a new object is a plain object until it is saved or loaded).
    /// </summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    SharedEntityState? SharedState { get; set; }

    /// <summary>Reads shared property <paramref name="index"/> (see <see cref="SharedEntityType.Properties"/>) without a check.</summary>
    object? GetSharedValue(int index);

    /// <summary>Writes shared property <paramref name="index"/> without recording a user write. For loaders.</summary>
    void SetSharedValue(int index, object? value);
}

/// <summary>An <see cref="ISharedEntity"/> with a version property: the strict protocol.</summary>
public interface IVersionedSharedEntity : ISharedEntity
{
    /// <summary>The value of the version property (an <see cref="int"/> version is widened).</summary>
    long SharedVersion { get; set; }
}
