namespace SharedEntities.Caching;

/// <summary>
/// Settings of the process-wide entity cache (<see cref="EntityCache"/>, docs/entity-cache.md): which entity types it
/// keeps and how many rows. Part of <see cref="CoherenceOptions"/>; frozen with them when the runtime is built.
/// </summary>
public sealed class EntityCacheOptions
{
    private bool _frozen;

    /// <summary>
    /// Whether the runtime keeps the rows it reads. Off, every read by key goes to the database (and rows loaded by a
    /// query still count as checked in their scope). Default: <see langword="true"/>.
    /// </summary>
    public bool Enabled { get; set => field = Settable(value); } = true;

    /// <summary>
    /// How many rows the cache holds at most, across all entity types. When it is full, the rows used least recently
    /// make room (BitFaster.Caching's <c>ConcurrentLru</c>). Default: 10,000; at least 3.
    /// </summary>
    public int SizeLimit { get; set => field = Settable(value); } = 10_000;

    /// <summary>
    /// When not empty, only these entity types (by entity name, <see cref="SharedEntityType.Name"/>) are cached: an
    /// opt-in list. Default: empty (every versioned entity type that <see cref="ExcludedEntities"/> does not name).
    /// </summary>
    public ISet<string> IncludedEntities { get; private set; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>Entity types (by entity name) that are never cached: an opt-out list. It wins over <see cref="IncludedEntities"/>.</summary>
    public ISet<string> ExcludedEntities { get; private set; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>Whether rows of <paramref name="entityName"/> are cached under these settings.</summary>
    public bool Caches(string entityName)
    {
        ArgumentNullException.ThrowIfNull(entityName);
        return Enabled && !ExcludedEntities.Contains(entityName) && (IncludedEntities.Count == 0 || IncludedEntities.Contains(entityName));
    }

    internal EntityCacheOptions FrozenCopy()
    {
        var copy = new EntityCacheOptions
        {
            Enabled = Enabled,
            SizeLimit = SizeLimit,
            IncludedEntities = System.Collections.Immutable.ImmutableHashSet.CreateRange(StringComparer.Ordinal, IncludedEntities),
            ExcludedEntities = System.Collections.Immutable.ImmutableHashSet.CreateRange(StringComparer.Ordinal, ExcludedEntities),
        };
        copy._frozen = true;
        return copy;
    }

    internal void Validate()
    {
        if (SizeLimit < 3)
        {
            throw new ArgumentException($"EntityCache.SizeLimit must be at least 3; it is {SizeLimit}.", nameof(SizeLimit));
        }

        foreach (string name in IncludedEntities.Concat(ExcludedEntities))
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new ArgumentException("EntityCache.IncludedEntities and ExcludedEntities hold entity names, which are never empty.", nameof(IncludedEntities));
            }
        }
    }

    private T Settable<T>(T value) => _frozen
        ? throw new InvalidOperationException("The options of a built Coherence cannot change: set EntityCache before building it.")
        : value;
}
