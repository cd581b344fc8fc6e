using System.Collections.Immutable;

namespace SharedEntities.Caching;

/// <summary>
/// One committed row as this process last read it: its version and the values an integration needs to materialize
/// the entity again, in the integration's own order. Immutable: every read materializes a new instance from it, so no
/// two flows ever share one mutable entity.
/// </summary>
/// <param name="shape">
/// What the values mean: the mapping or model type that wrote them (an ADO.NET <c>DbEntityMapping</c>, an EF Core
/// entity type). An integration uses only entries of its own shape.
/// </param>
/// <param name="version">The row's version when it was read.</param>
/// <param name="values">The row's values. Mutable values (arrays, collections) must be copies the caller keeps no reference to.</param>
public sealed class CachedEntity(object shape, long version, ImmutableArray<object?> values)
{
    /// <summary>What the values mean (see the constructor).</summary>
    public object Shape { get; } = shape ?? throw new ArgumentNullException(nameof(shape));

    /// <summary>The row's version when it was read.</summary>
    public long Version { get; } = version;

    /// <summary>The row's values, in the order of <see cref="Shape"/>.</summary>
    public ImmutableArray<object?> Values { get; } = values.IsDefault ? throw new ArgumentException("The values of a cached entity are required.", nameof(values)) : values;
}
