namespace SharedEntities;

/// <summary>
/// Marks a <see langword="partial"/> class whose <see langword="partial"/> properties are shared between processes:
/// the generated accessors check the entity's version token in the shared store before a read (once per
/// <see cref="FreshScope"/>) and record writes so that <see cref="FreshScope.CommitAsync"/> publishes them.
/// </summary>
/// <remarks>
/// The key is the property marked <c>[Key]</c>, or named <c>Id</c> or <c>{TypeName}Id</c>. A <see cref="long"/> or
/// <see cref="int"/> property named <c>Version</c> or marked <c>[ConcurrencyCheck]</c> makes the entity strict
/// (versioned); without one the entity is serial-only. Key and version are plain (not partial) properties.
/// </remarks>
[AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
public sealed class SharedEntityAttribute : Attribute
{
    /// <summary>
    /// The entity name used in store keys (<c>{name}:{key}</c>). Defaults to the class name. Set it when two shared
    /// classes in one application have the same name, or to keep keys stable across a rename.
    /// </summary>
    public string? Name { get; set; }
}
