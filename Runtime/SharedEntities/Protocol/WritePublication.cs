using Microsoft.Extensions.Logging;
using SharedEntities.Stores;

namespace SharedEntities.Protocol;

/// <summary>
/// The store side of a commit (docs/protocol.md, "Writer"). Integrations that run their own database writes
/// (EF Core's SaveChanges) use it directly: add the entities written, <see cref="RaiseDirtyAsync"/> after the
/// version-guarded statements (which hold the rows' locks) and before the commit, <see cref="PublishAsync"/> after the
/// commit. After a rollback do nothing: the dirty tokens make readers ask the database until they expire.
/// </summary>
public sealed class WritePublication
{
    private readonly Coherence _coherence;
    private readonly List<Entry> _entries = [];
    private HashSet<string>? _notRaised;

    /// <summary>Creates an empty publication for <paramref name="coherence"/>.</summary>
    public WritePublication(Coherence coherence)
    {
        ArgumentNullException.ThrowIfNull(coherence);
        _coherence = coherence;
    }

    /// <summary>The number of entities added.</summary>
    public int Count => _entries.Count;

    /// <summary>Adds an entity whose row is being updated to <paramref name="newVersion"/> (versioned) or rewritten (serial-only: <see langword="null"/>).</summary>
    public void AddUpdate(ISharedEntity entity, long? newVersion)
    {
        ArgumentNullException.ThrowIfNull(entity);
        if (entity is IVersionedSharedEntity && newVersion is null)
        {
            throw new ArgumentException($"{entity.SharedType.Name} is versioned: give the version the update writes.", nameof(newVersion));
        }

        _entries.Add(new Entry(entity, _coherence.StoreKeyOf(entity), entity is IVersionedSharedEntity ? newVersion : null, IsDelete: false));
    }

    /// <summary>
    /// Adds an entity whose row is being inserted. A versioned entity must already hold its first version, one that no
    /// earlier row with the same key used (see <see cref="SharedToken.NewIncarnationVersion"/>).
    /// </summary>
    public void AddInsert(ISharedEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        long? version = entity is IVersionedSharedEntity versioned ? versioned.SharedVersion : null;
        _entries.Add(new Entry(entity, _coherence.StoreKeyOf(entity), version, IsDelete: false, IsInsert: true));
    }

    /// <summary>Adds an entity whose row is being deleted. A versioned entity must still hold the version it was deleted at.</summary>
    public void AddDelete(ISharedEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        long? next = entity is IVersionedSharedEntity versioned ? versioned.SharedVersion + 1 : null;
        _entries.Add(new Entry(entity, _coherence.StoreKeyOf(entity), next, IsDelete: true));
    }

    /// <summary>
    /// After the guarded statements, before the commit: raises each versioned entity's token to dirty(new version), so
    /// that from now until the publish, readers verify against the database. The writer must hold the rows' locks
    /// while it does: a lease filler's locking read then waits for the commit. Serial-only entities have nothing to raise.
    /// </summary>
    /// <exception cref="SharedStoreUnavailableException">
    /// A token could not be raised and <see cref="CoherenceOptions.AllowCommitWhenStoreUnavailable"/> is off: do not commit.
    /// </exception>
    /// <exception cref="StaleEntityException">
    /// The store holds a newer token than the version being written: the store is ahead of the database (a restore
    /// from a backup, a failover to a lagging replica, a token written outside the library). Do not commit: the
    /// entity's next check repairs it.
    /// </exception>
    public ValueTask RaiseDirtyAsync(CancellationToken cancellationToken = default) => RaiseDirtyCoreAsync(async: true, cancellationToken);

    /// <inheritdoc cref="RaiseDirtyAsync(CancellationToken)"/>
    public void RaiseDirty() => SyncPath.Complete(RaiseDirtyCoreAsync(async: false, CancellationToken.None));

    /// <summary>
    /// After the commit: turns each of this writer's own dirty tokens into clean ones (by compare-and-swap; a token that
    /// is anything else — evicted, another writer's — is left alone), leaves tombstones for deletes, and bumps the
    /// serials of serial-only entities. Never throws for store failures: they are logged, and cost later readers a
    /// database check, not correctness.
    /// </summary>
    public ValueTask PublishAsync(CancellationToken cancellationToken = default) => PublishCoreAsync(async: true, cancellationToken);

    /// <inheritdoc cref="PublishAsync(CancellationToken)"/>
    public void Publish() => SyncPath.Complete(PublishCoreAsync(async: false, CancellationToken.None));

    /// <summary>
    /// After the commit, before <see cref="PublishAsync"/>: the writes of the entities added are committed. Their
    /// scope no longer counts them as pending writes (its <see cref="FreshScope.CommitAsync"/> does not write them
    /// again, its disposal does not reload them), and deleted entities throw <see cref="EntityDeletedException"/> when
    /// touched. Versioned entities must already hold their new versions (the integration's write set them).
    /// </summary>
    public void MarkCommitted()
    {
        foreach (Entry entry in _entries)
        {
            // The cache holds only rows read from the database: the committed row is read again when it is needed.
            _coherence.Cache.Remove(entry.Key);
            if (entry.Entity.SharedState is not { } state)
            {
                continue;
            }

            state.Written = false;
            if (entry.IsDelete)
            {
                state.DeleteRequested = false;
                state.FreshIn = FreshScope.NoScope;
                state.Failure = new EntityDeletedException(state.Type.Name, state.Entity.SharedKey);
            }
        }
    }

    /// <summary>
    /// After a rollback: the local values of the entities added are not those of a committed row, so each reloads at
    /// its next check. Versioned entities must hold the version their copy was read at again (the one the guarded
    /// write expected).
    /// </summary>
    public void MarkRolledBack()
    {
        foreach (Entry entry in _entries)
        {
            if (entry.Entity.SharedState is { } state)
            {
                state.Written = false;
                state.MustReload = true;
                state.FreshIn = FreshScope.NoScope;
            }
        }
    }

    private async ValueTask RaiseDirtyCoreAsync(bool async, CancellationToken cancellationToken)
    {
        var batch = new StoreBatch();
        foreach (Entry entry in _entries)
        {
            if (entry.NewVersion is { } version)
            {
                batch.Add(new StoreOperation(StoreOperationKind.Raise, entry.Key, SharedToken.Dirty(version).Value, Ttl: _coherence.Options.DirtyTokenTtl));
            }
        }

        if (batch.Count == 0)
        {
            return;
        }

        await _coherence.ExecuteAsync(batch, async, cancellationToken).ConfigureAwait(false);
        await ReplaceDamageAsync(batch, async, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch[i] is { Status: StoreStatus.NotStored, Value: var current } && new SharedToken(current) is { IsValid: true } found &&
                found.Value > batch.Operations[i].Value && EntryOfRaise(i) is { IsInsert: false } entry)
            {
                // Under the row lock nobody else can raise this entity past our version: the store is ahead of the
                // database. Committing would reuse versions that the store (and maybe other processes) already know.
                // (An insert below a deletion's token goes ahead: its row's next check moves it past the token.)
                if (entry.Entity.SharedState is { } state)
                {
                    state.MustReload = true;
                }

                _coherence.Cache.RequireCheck(batch.Operations[i].Key);
                _coherence.Metrics.StoreAhead.Add(1);
                Log.StoreAheadOnWrite(_coherence.Logger, _coherence.KeyForLog(batch.Operations[i].Key), found.ToString(), entry.NewVersion ?? 0);
                throw new StaleEntityException(
                    entry.Entity.SharedType.Name,
                    entry.Entity.SharedKey,
                    entry.NewVersion - 1,
                    $"the shared store holds {found}, newer than the version {entry.NewVersion} this write would commit, so the store is ahead of the " +
                    "database (a database restored from a backup, a failover to a lagging replica, or a token written outside the library). The " +
                    "transaction was rolled back; the entity's next check repairs the store.");
            }

            if (batch[i].IsFailure)
            {
                Log.DirtyRaiseFailed(_coherence.Logger, _coherence.KeyForLog(batch.Operations[i].Key), _coherence.Options.AllowCommitWhenStoreUnavailable, batch[i].Error);
                (_notRaised ??= new(StringComparer.Ordinal)).Add(batch.Operations[i].Key);
                if (!_coherence.Options.AllowCommitWhenStoreUnavailable)
                {
                    throw new SharedStoreUnavailableException(
                        $"The shared store did not take the dirty token of {EntryOfRaise(i).Entity.SharedType.Name} {_coherence.KeyForLog(batch.Operations[i].Key)} ({batch[i].Status}), so the commit was not made: " +
                        "committing without it could let other processes accept the old version. Retry when the store is back, or see " +
                        "CoherenceOptions.AllowCommitWhenStoreUnavailable.",
                        batch[i].Error);
                }
            }
        }
    }

    // Raises that found a value the library cannot have written (not a token of a versioned entity, or one so far
    // ahead that no process can hold its version): replaced by CAS over exactly that value, as a miss would be. The
    // writer holds the row's lock, so nothing newer can be in flight. A replacement that fails leaves the raise failed.
    private async ValueTask ReplaceDamageAsync(StoreBatch raises, bool async, CancellationToken cancellationToken)
    {
        var replacements = new StoreBatch();
        var indexes = new List<int>();
        for (int i = 0; i < raises.Count; i++)
        {
            StoreOperation raise = raises.Operations[i];
            if (raises[i] is { Status: StoreStatus.NotStored, Cas: not 0 } refused &&
                TokenDamage.IsReplaceableByWriter(new SharedToken(refused.Value), new SharedToken(raise.Value).Version))
            {
                replacements.Add(raise with { Kind = StoreOperationKind.Fill, Cas = refused.Cas });
                indexes.Add(i);
            }
        }

        if (replacements.Count == 0)
        {
            return;
        }

        await _coherence.ExecuteAsync(replacements, async, cancellationToken).ConfigureAwait(false);
        for (int j = 0; j < indexes.Count; j++)
        {
            int i = indexes[j];
            Entry entry = EntryOfRaise(i);
            string found = new SharedToken(raises[i].Value).ToString();
            _coherence.Metrics.DamagedTokens.Add(1);
            Log.DamagedToken(_coherence.Logger, entry.Entity.SharedType.Name, _coherence.KeyForLog(entry.Key), found, "a write found it where its dirty token goes");
            raises.SetResult(i, replacements[j].Status == StoreStatus.Stored
                ? replacements[j]
                : new StoreResult(StoreStatus.Failed, Error: new InvalidOperationException(
                    $"The shared store held {found}, a value the library does not write, where the dirty token goes, and it changed while being replaced.")));
        }
    }

    // The entry of the i-th operation of the raise batch (entries without a version have no raise).
    private Entry EntryOfRaise(int index)
    {
        foreach (Entry entry in _entries)
        {
            if (entry.NewVersion is not null && index-- == 0)
            {
                return entry;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }

    private async ValueTask PublishCoreAsync(bool async, CancellationToken cancellationToken)
    {
        CoherenceOptions options = _coherence.Options;
        var batch = new StoreBatch();
        var published = new List<Entry>();
        foreach (Entry entry in _entries)
        {
            if (entry.NewVersion is { } late && _notRaised is not null && _notRaised.Contains(entry.Key))
            {
                // Committed without its dirty token: a publish over it would write nothing, and the old clean token
                // would stay readable. Raise it late, in the background, until the store takes it.
                _coherence.Publisher.AddLate(
                    entry.Key, late, entry.IsDelete ? SharedToken.Deleted(late) : SharedToken.Clean(late),
                    entry.IsDelete ? options.TombstoneTtl : options.TokenTtlFor(entry.Entity.SharedType.Name));
                continue;
            }

            published.Add(entry);
            StoreOperation operation = entry switch
            {
                { IsDelete: true, NewVersion: { } v } => new(
                    StoreOperationKind.Publish, entry.Key, SharedToken.Deleted(v).Value, Expected: SharedToken.Dirty(v).Value, Ttl: options.TombstoneTtl),
                { IsDelete: true } => new(StoreOperationKind.Raise, entry.Key, SharedToken.Tombstone.Value, Ttl: options.TombstoneTtl),
                { NewVersion: { } v } => new(
                    StoreOperationKind.Publish,
                    entry.Key,
                    SharedToken.Clean(v).Value,
                    Expected: SharedToken.Dirty(v).Value,
                    Ttl: options.TokenTtlFor(entry.Entity.SharedType.Name)),
                _ => new(StoreOperationKind.Increment, entry.Key),
            };
            batch.Add(operation);
        }

        if (batch.Count == 0)
        {
            return;
        }

        if (options.PublishInBackground && published.TrueForAll(e => e.NewVersion is not null))
        {
            // Versioned publishes only turn this writer's dirty tokens into clean ones: when they land changes nothing
            // but how long readers ask the database. (Serial-only bumps stay on the caller's path: until they land,
            // readers accept the old serial.)
            _coherence.Publisher.Publish(batch);
            return;
        }

        await _coherence.ExecuteAsync(batch, async, cancellationToken).ConfigureAwait(false);
        var reseeds = new StoreBatch();
        for (int i = 0; i < batch.Count; i++)
        {
            StoreResult result = batch[i];
            Entry entry = published[i];
            if (result.IsFailure)
            {
                Log.PublishFailed(_coherence.Logger, _coherence.KeyForLog(entry.Key), result.Status, result.Error);
            }

            if (batch.Operations[i].Kind != StoreOperationKind.Increment || entry.Entity.SharedState is not { } state)
            {
                continue;
            }

            // Serial-only: keep the local serial only if nobody else bumped since this copy was synced; otherwise the
            // next check reloads (two writers' increments may land in the other order than their commits).
            state.Serial = result.Status == StoreStatus.Stored && state.Serial == result.Value - 1 ? result.Value : null;
            if (result.Status == StoreStatus.Miss)
            {
                long seed = Random.Shared.NextInt64(1, 1L << 62);
                reseeds.Add(new StoreOperation(StoreOperationKind.AddIfAbsent, entry.Key, seed, Ttl: options.TokenTtlFor(entry.Entity.SharedType.Name)));
            }
        }

        if (reseeds.Count > 0)
        {
            await _coherence.ExecuteAsync(reseeds, async, cancellationToken).ConfigureAwait(false);
        }
    }

    private readonly record struct Entry(ISharedEntity Entity, string Key, long? NewVersion, bool IsDelete, bool IsInsert = false);
}
