using System.Collections.Concurrent;
using BitFaster.Caching;
using BitFaster.Caching.Lru;
using SharedEntities.Loading;
using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Caching;

/// <summary>
/// The process-wide entity cache (docs/entity-cache.md): per store key, the last committed row this process read of a
/// versioned shared entity — its version and the values needed to materialize it again. A read by key asks the store
/// once for every key it needs (<see cref="ServeAsync"/>); a row whose cached version the store vouches for (a clean
/// token of exactly that version) is materialized from here by the integration, into a new instance for the caller's
/// own context; the others are loaded from the database, and that read refills the cache.
/// </summary>
/// <remarks>
/// <para>Rows enter only from committed reads: a read outside every application transaction (<see cref="Offer"/>).
/// Never from a write: a writer's values are not a read of the committed row (a trigger, a default, a computed
/// column may differ), so a commit removes the rows it wrote instead.</para>
/// <para>Bounded by <see cref="EntityCacheOptions.SizeLimit"/> rows with BitFaster.Caching's <c>ConcurrentLru</c>:
/// reads take no lock, and the rows used least recently make room.</para>
/// </remarks>
public sealed class EntityCache
{
    private readonly Coherence _coherence;
    private readonly EntityCacheOptions _options;
    private readonly ConcurrentLru<string, CachedEntity> _rows;

    // Keys whose writes found the store ahead of the database: rows of them read by a query do not count as checked
    // until a check has run (and repaired the row), or every new scope would load, trust and fail to write them again.
    private readonly ConcurrentDictionary<string, byte> _mustCheck = new(StringComparer.Ordinal);
    private int _mustCheckCount;

    internal EntityCache(Coherence coherence, EntityCacheOptions options)
    {
        _coherence = coherence;
        _options = options;
        _rows = new ConcurrentLru<string, CachedEntity>(Environment.ProcessorCount, options.SizeLimit, StringComparer.Ordinal);
        if (_rows.Events.HasValue)
        {
            _rows.Events.Value!.ItemRemoved += (_, removed) =>
            {
                if (removed.Reason == ItemRemovedReason.Evicted)
                {
                    _coherence.Metrics.CacheEvictions.Add(1);
                }
            };
        }
    }

    /// <summary>The number of rows held.</summary>
    public int Count => _rows.Count;

    /// <summary>The most rows it holds (<see cref="EntityCacheOptions.SizeLimit"/>).</summary>
    public int SizeLimit => _options.SizeLimit;

    /// <summary>
    /// Whether rows of <paramref name="type"/> are cached: a versioned entity (a serial-only entity has no version that
    /// pins its content) that the options do not exclude.
    /// </summary>
    public bool Caches(SharedEntityType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        return type.Mode == SharedEntityMode.Versioned && _options.Caches(type.Name);
    }

    /// <summary>The row cached under <paramref name="storeKey"/>, if any, whatever the store says now. For integrations and tests.</summary>
    public CachedEntity? Find(string storeKey)
    {
        ArgumentNullException.ThrowIfNull(storeKey);
        return _rows.TryGet(storeKey, out CachedEntity? row) ? row : null;
    }

    /// <summary>
    /// Offers a row just read from the database <b>outside every application transaction</b> (a read inside one may
    /// see the transaction's own uncommitted writes, whose version another commit may reuse after a rollback). Kept
    /// unless a newer version is cached already, or the type is not cached.
    /// </summary>
    /// <param name="storeKey">The entity's store key (<see cref="Coherence.StoreKeyOf"/>).</param>
    /// <param name="type">The entity's type.</param>
    /// <param name="row">The row.</param>
    public void Offer(string storeKey, SharedEntityType type, CachedEntity row)
    {
        ArgumentNullException.ThrowIfNull(storeKey);
        ArgumentNullException.ThrowIfNull(row);
        if (!Caches(type))
        {
            return;
        }

        // A concurrent offer of an older version may still land last: harmless, since a row is only ever served for a
        // clean token of exactly its version; it costs one load.
        if (!_rows.TryGet(storeKey, out CachedEntity? held) || held.Version <= row.Version)
        {
            _rows.AddOrUpdate(storeKey, row);
        }
    }

    /// <summary>Forgets the row of <paramref name="storeKey"/> (a commit wrote it).</summary>
    public void Remove(string storeKey)
    {
        ArgumentNullException.ThrowIfNull(storeKey);
        _rows.TryRemove(storeKey);
    }

    /// <summary>Forgets every row.</summary>
    public void Clear() => _rows.Clear();

    /// <summary>
    /// For each probe (an unattached instance of the entity's class with only its key set), the cached row that the
    /// store vouches for, or <see langword="null"/> where the caller must load the row from the database. One store
    /// round trip for all of them; a missing token whose lease this process wins (or a value the library did not
    /// write) is filled under a locking read through <paramref name="loader"/>, as a check does, and the row is served
    /// if the database's version is the cached one. Inside an application transaction nothing is served: the
    /// protocol's rules for transactions apply to every row.
    /// </summary>
    /// <param name="probes">One per key; their classes must be mapped by <paramref name="loader"/>.</param>
    /// <param name="loader">Reads the versions under a lock for the fills.</param>
    /// <param name="shape">The caller's <see cref="CachedEntity.Shape"/>: rows of another shape are not served.</param>
    /// <param name="cancellationToken">Cancels the store and database waits.</param>
    public async ValueTask<CachedEntity?[]> ServeAsync(
        IReadOnlyList<ISharedEntity> probes, IEntityLoader loader, object shape, CancellationToken cancellationToken = default) =>
        await ServeCoreAsync(probes, loader, shape, async: true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="ServeAsync"/>
    public CachedEntity?[] Serve(IReadOnlyList<ISharedEntity> probes, IEntityLoader loader, object shape)
    {
        ValueTask<CachedEntity?[]> served = ServeCoreAsync(probes, loader, shape, async: false, CancellationToken.None);
        return served.IsCompleted ? served.GetAwaiter().GetResult() : throw new InvalidOperationException("A synchronous cache read did not complete synchronously.");
    }

    /// <summary>Whether rows of <paramref name="storeKey"/> read by a query must still be checked (a write found the store ahead).</summary>
    internal bool MustCheck(string storeKey) => Volatile.Read(ref _mustCheckCount) > 0 && _mustCheck.ContainsKey(storeKey);

    /// <summary>A write of <paramref name="storeKey"/> found the store ahead of the database: the next read of it is checked, which repairs it.</summary>
    internal void RequireCheck(string storeKey)
    {
        if (_mustCheck.Count >= _options.SizeLimit)
        {
            // Bounded like the rows; a key forgotten here costs one more refused write before its check.
            _mustCheck.Clear();
        }

        if (_mustCheck.TryAdd(storeKey, 0))
        {
            Interlocked.Increment(ref _mustCheckCount);
        }
    }

    /// <summary>A check found <paramref name="storeKey"/> fresh: its rows may count as checked again.</summary>
    internal void Checked(string storeKey)
    {
        if (Volatile.Read(ref _mustCheckCount) > 0 && _mustCheck.TryRemove(storeKey, out _))
        {
            Interlocked.Decrement(ref _mustCheckCount);
        }
    }

    private async ValueTask<CachedEntity?[]> ServeCoreAsync(
        IReadOnlyList<ISharedEntity> probes, IEntityLoader loader, object shape, bool async, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(probes);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentNullException.ThrowIfNull(shape);
        var served = new CachedEntity?[probes.Count];
        if (!_options.Enabled || loader.ReadsInTransaction || System.Transactions.Transaction.Current is not null)
        {
            return served;
        }

        // The candidates: keys with a row of the caller's shape that no write left to be checked.
        var keys = new List<string>(probes.Count);
        var indexes = new List<int>(probes.Count);
        var rows = new List<CachedEntity>(probes.Count);
        for (int i = 0; i < probes.Count; i++)
        {
            ISharedEntity probe = probes[i] ?? throw new ArgumentException("A probe is null.", nameof(probes));
            if (!Caches(probe.SharedType))
            {
                continue;
            }

            string key = _coherence.StoreKeyOf(probe);
            if (Find(key) is { } row && ReferenceEquals(row.Shape, shape) && !MustCheck(key))
            {
                keys.Add(key);
                indexes.Add(i);
                rows.Add(row);
            }
        }

        int hits = 0;
        if (keys.Count > 0)
        {
            var reads = new StoreBatch();
            foreach (string key in keys)
            {
                reads.AddRead(key, _coherence.Options.LeaseTtl);
            }

            await _coherence.ExecuteAsync(reads, async, cancellationToken).ConfigureAwait(false);
            _coherence.Metrics.Checks.Add(keys.Count);
            List<int>? fills = null;
            for (int j = 0; j < keys.Count; j++)
            {
                switch (Vouch(reads[j], rows[j], probes[indexes[j]]))
                {
                    case Vouched.Yes:
                        served[indexes[j]] = rows[j];
                        hits++;
                        break;
                    case Vouched.AfterFill:
                        (fills ??= []).Add(j);
                        break;
                }
            }

            if (fills is not null)
            {
                hits += await FillAsync(loader, fills, keys, indexes, rows, reads, probes, served, async, cancellationToken).ConfigureAwait(false);
            }
        }

        _coherence.Metrics.CacheHits.Add(hits);
        _coherence.Metrics.CacheMisses.Add(probes.Count - hits);
        return served;
    }

    private enum Vouched : byte
    {
        No,
        Yes,
        AfterFill,
    }

    // What the store's answer says about a row cached at its version: exactly its clean token vouches for it; a miss
    // whose lease this process won, or a value the library cannot have written, is filled under a locking read first.
    private Vouched Vouch(StoreResult result, CachedEntity row, ISharedEntity probe)
    {
        SharedEntitiesMetrics metrics = _coherence.Metrics;
        switch (result.Status)
        {
            case StoreStatus.Hit:
                var token = new SharedToken(result.Value);
                if (token.IsClean && token.Version == row.Version)
                {
                    return Vouched.Yes;
                }

                if (TokenDamage.Of(token, row.Version) is { } why && result.Cas != 0)
                {
                    ReportDamage(probe, token.ToString(), why);
                    return Vouched.AfterFill;
                }

                return Vouched.No;
            case StoreStatus.LeaseWon:
                metrics.Misses.Add(1);
                metrics.LeasesWon.Add(1);
                return Vouched.AfterFill;
            case StoreStatus.Damaged when result.Cas != 0:
                ReportDamage(probe, "a value that is not a token", "something other than this library wrote it");
                return Vouched.AfterFill;
            case StoreStatus.LeaseLost:
                metrics.Misses.Add(1);
                metrics.LeasesLost.Add(1);
                return Vouched.No;
            case StoreStatus.Miss:
                metrics.Misses.Add(1);
                return Vouched.No;
            default:
                return Vouched.No;
        }
    }

    private void ReportDamage(ISharedEntity probe, string found, string why)
    {
        _coherence.Metrics.DamagedTokens.Add(1);
        Log.DamagedToken(_coherence.Logger, probe.SharedType.Name, _coherence.KeyForLog(_coherence.StoreKeyOf(probe)), found, why);
    }

    // The lease winner's fill (LockedFill): a row whose version under the lock is the cached one is served: it is the
    // committed row. A lock wait that timed out gives the lease up, as a check does, and the rows are loaded instead.
    private async ValueTask<int> FillAsync(
        IEntityLoader loader,
        List<int> fills,
        List<string> keys,
        List<int> indexes,
        List<CachedEntity> rows,
        StoreBatch reads,
        IReadOnlyList<ISharedEntity> probes,
        CachedEntity?[] served,
        bool async,
        CancellationToken cancellationToken)
    {
        IReadOnlyList<long?>? versions = await LockedFill.RunAsync(
            _coherence,
            loader,
            [.. fills.Select(j => (IVersionedSharedEntity)probes[indexes[j]])],
            [.. fills.Select(j => keys[j])],
            [.. fills.Select(j => reads[j].Cas)],
            async,
            cancellationToken).ConfigureAwait(false);
        int hits = 0;
        for (int f = 0; versions is not null && f < fills.Count; f++)
        {
            int j = fills[f];
            if (versions[f] == rows[j].Version)
            {
                served[indexes[j]] = rows[j];
                hits++;
            }
        }

        return hits;
    }
}
