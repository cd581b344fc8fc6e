using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using SharedEntities.Caching;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// The read side of one <see cref="DbContext"/> (docs/efcore.md, "Reads by key: the entity cache"): attaches what its
/// queries materialize, offers the rows its queries read outside every transaction to the process-wide entity cache,
/// and reads by key (<see cref="FindAsync"/>): the instances it tracks, then the rows the store vouches for in the
/// cache, then one query for the rest. One per context, created on its first use, which is when a model the cache
/// cannot serve faithfully is refused.
/// </summary>
internal sealed class ContextReads
{
    private static readonly ConditionalWeakTable<DbContext, ContextReads> ByContext = [];

    private readonly DbContext _context;
    private readonly Coherence _coherence;
    private readonly DbContextEntityLoader _loader;

    public ContextReads(DbContext context, Coherence coherence, DbContextEntityLoader loader)
    {
        _context = context;
        _coherence = coherence;
        _loader = loader;
    }

    /// <summary>The reads of <paramref name="context"/>; on its first use, refuses a model the entity cache cannot serve (<see cref="SharedEntitiesContexts.CreateReads"/>).</summary>
    public static ContextReads Of(DbContext context) =>
        ByContext.GetValue(context, static c => (SharedEntitiesContexts.Of(c)
            ?? throw new InvalidOperationException($"The context {c.GetType().Name} was not set up with UseSharedEntities.")).CreateReads(c));

    /// <summary>
    /// A query materialized <paramref name="entity"/> from <paramref name="row"/>: its values in the order of the
    /// <paramref name="mapping"/>'s <see cref="CachedRowMapping.Properties"/>, shadow ones included, or
    /// <see langword="null"/> for a type the cache cannot keep. Attached as just read (in a scope and outside every
    /// transaction it counts as checked) and, read outside every transaction, its row is offered to the cache.
    /// Tracking and no-tracking queries alike.
    /// </summary>
    public void Materialized(ISharedEntity entity, CachedRowMapping mapping, object?[]? row)
    {
        _coherence.AttachFresh(entity, _loader);
        EntityCache cache = _coherence.Cache;
        if (row is null || !cache.Caches(entity.SharedType) || _loader.ReadsInTransaction)
        {
            return; // inside a transaction the row may hold the transaction's own uncommitted writes
        }

        cache.Offer(_coherence.StoreKeyOf(entity), entity.SharedType, mapping.Capture(row));
    }

    /// <summary>
    /// For each key, the entity: the instance this context tracks; else a new instance from the cached row the store
    /// vouches for, tracked as <see cref="EntityState.Unchanged"/>; else one tracked query for all the others (which
    /// refills the cache). <see langword="null"/> where no row has the key.
    /// </summary>
    public async ValueTask<T?[]> FindAsync<T, TKey>(DbSet<T> set, IReadOnlyList<TKey> keys, bool async, CancellationToken cancellationToken)
        where T : class, ISharedEntity
        where TKey : notnull
    {
        CachedRowMapping mapping = CachedRowMapping.For(set.EntityType);
        string keyName = KeyOf(mapping, typeof(TKey));
        var found = new T?[keys.Count];
        KeySet<TKey> wanted = Untracked(set, keys, found);
        if (wanted.Count == 0)
        {
            return found;
        }

        var entities = new T?[wanted.Count];
        List<TKey> rest = await ServeAsync(mapping, wanted.Keys, entities, async, cancellationToken).ConfigureAwait(false); // synchronous when !async
        if (rest.Count > 0)
        {
            // An ordinary tracked query: its rows count as checked and refill the cache like any other query's.
            IQueryable<T> query = set.AsTracking().Where(e => rest.Contains(EF.Property<TKey>(e, keyName)));
            List<T> loaded = async ? await query.ToListAsync(cancellationToken).ConfigureAwait(false) : query.ToList();
            foreach (T entity in loaded)
            {
                // (A database whose collation matches keys loosely may return a row under another spelling: it stays tracked, unlisted.)
                if (wanted.IndexOf((TKey)entity.SharedKey) is >= 0 and int j)
                {
                    entities[j] = entity;
                }
            }
        }

        for (int i = 0; i < keys.Count; i++)
        {
            found[i] ??= entities[wanted.IndexOf(keys[i])];
        }

        return found;
    }

    private static string KeyOf(CachedRowMapping mapping, Type keyType)
    {
        IEntityType entityType = mapping.EntityType;
        if (entityType.FindPrimaryKey() is not { Properties: [{ } key] } || key.Name != mapping.SharedType.KeyProperty)
        {
            throw new InvalidOperationException(
                $"FindShared reads {entityType.DisplayName()} by its shared key {mapping.SharedType.KeyProperty}, which must be its primary key (HasKey).");
        }

        return key.ClrType == keyType
            ? key.Name
            : throw new ArgumentException(
                $"The key of {entityType.DisplayName()} ({key.Name}) is a {key.ClrType.Name}; FindShared was given a {keyType.Name}.", nameof(keyType));
    }

    // The instances the context tracks go into found; returns the other keys, each once, in the order asked.
    private KeySet<TKey> Untracked<T, TKey>(DbSet<T> set, IReadOnlyList<TKey> keys, T?[] found)
        where T : class
        where TKey : notnull
    {
        // DbSet.Local runs DetectChanges, which a lookup by key does not need: keys of tracked entities never change.
        ChangeTracker tracker = _context.ChangeTracker;
        bool detect = tracker.AutoDetectChangesEnabled;
        tracker.AutoDetectChangesEnabled = false;
        LocalView<T> local;
        try
        {
            local = set.Local;
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = detect;
        }

        var wanted = new KeySet<TKey>(keys.Count);
        for (int i = 0; i < keys.Count; i++)
        {
            TKey key = keys[i] ?? throw new ArgumentException("A key is null.", nameof(keys));
            if (local.FindEntry(key) is { } entry)
            {
                found[i] = entry.Entity;
            }
            else
            {
                wanted.Add(key);
            }
        }

        return wanted;
    }

    // The keys whose cached rows the store vouches for become new instances of this context (entities); returns the others.
    private async ValueTask<List<TKey>> ServeAsync<T, TKey>(
        CachedRowMapping mapping, List<TKey> wanted, T?[] entities, bool async, CancellationToken cancellationToken)
        where T : class, ISharedEntity
        where TKey : notnull
    {
        EntityCache cache = _coherence.Cache;
        if (!mapping.CanCache || !cache.Caches(mapping.SharedType) || _loader.ReadsInTransaction)
        {
            return wanted; // inside a transaction the protocol's rules for transactions apply to every row: nothing is served
        }

        var probes = new ISharedEntity[wanted.Count];
        for (int j = 0; j < probes.Length; j++)
        {
            probes[j] = (ISharedEntity)mapping.CreateProbe(wanted[j]);
        }

        CachedEntity?[] rows = async
            ? await cache.ServeAsync(probes, _loader, mapping.Shape, cancellationToken).ConfigureAwait(false)
            : cache.Serve(probes, _loader, mapping.Shape);
        List<TKey>? rest = null;
        for (int j = 0; j < rows.Length; j++)
        {
            if (rows[j] is { } row)
            {
                // The probe becomes the instance: a new object of this context, every value copied from the row.
                mapping.Materialize(row, probes[j], _context);
                entities[j] = (T)_coherence.AttachFresh(probes[j], _loader);
            }
            else
            {
                (rest ??= new List<TKey>(rows.Length - j)).Add(wanted[j]);
            }
        }

        return rest ?? [];
    }

    /// <summary>Distinct keys in the order first asked, with their positions (a dictionary once there are more than a few).</summary>
    private sealed class KeySet<TKey>(int capacity)
        where TKey : notnull
    {
        private const int ScanLimit = 8;
        private Dictionary<TKey, int>? _positions;

        public List<TKey> Keys { get; } = new(capacity);

        public int Count => Keys.Count;

        public void Add(TKey key)
        {
            if (IndexOf(key) >= 0)
            {
                return;
            }

            Keys.Add(key);
            if (_positions is not null)
            {
                _positions.Add(key, Keys.Count - 1);
            }
            else if (Keys.Count > ScanLimit)
            {
                _positions = new Dictionary<TKey, int>(Keys.Count * 2);
                for (int i = 0; i < Keys.Count; i++)
                {
                    _positions.Add(Keys[i], i);
                }
            }
        }

        public int IndexOf(TKey key) => _positions is not null ? _positions.GetValueOrDefault(key, -1) : Keys.IndexOf(key);
    }
}
