using SharedEntities.Internals;
using SharedEntities.Loading;
using SharedEntities.Protocol;

namespace SharedEntities;

/// <summary>
/// A fresh scope: inside it, each shared entity is checked against the store
/// at most once, on first touch, together with every other entity the scope tracks that has not been checked yet (one
/// batch, one round trip per store server). Later reads in the scope are local. <see cref="CommitAsync"/> writes the
/// entities changed in the scope with a version check and publishes them after the database commit; disposing without
/// committing publishes nothing and discards the local changes (the next check reloads those entities).
/// </summary>
/// <remarks>
/// A scope is ambient to the code that begins it, like <c>TransactionScope</c>: it flows into awaited calls and tasks
/// started inside it. Begin it with <c>using</c>/<c>await using</c> (<see cref="Coherence.BeginScope"/>) or run code in
/// one (<see cref="Coherence.RunInScopeAsync(Func{FreshScope, CancellationToken, Task}, int, CancellationToken)"/>).
/// Scopes nest: an inner scope checks again what it touches. Like a <c>DbContext</c>, a scope serves one flow at a
/// time: a check or commit started while another runs in the same scope throws <see cref="InvalidOperationException"/>.
/// <para>An entity instance serves one flow at a time too: it is tracked by one scope, and a scope that touches it
/// while a scope of another flow still holds it — one that is open and is neither the scope itself nor one of its
/// outer scopes — throws <see cref="InvalidOperationException"/>. Nested scopes, tasks started inside a scope, and
/// scopes one after the other (a disposed scope lets go of its entities) share instances as before; concurrent flows
/// (requests) each find their own instance by key.</para>
/// </remarks>
public sealed class FreshScope : IDisposable, IAsyncDisposable
{
    /// <summary>The <see cref="SharedEntityState.FreshIn"/> of an entity not fresh in any scope; no scope has this id.</summary>
    internal const long NoScope = -1;

    // The ambient scope flows with the ExecutionContext; its change handler mirrors the scope's id into a plain
    // thread-static (as CultureInfo.CurrentCulture does), so the getter's fast path compares two longs. A value, not a
    // reference: a non-GC thread-static is one load away from the thread's TLS block.
    private static readonly AsyncLocal<FreshScope?> Ambient = new(static change => t_currentId = change.CurrentValue?._id ?? 0);

    [ThreadStatic]
    private static long t_currentId;

    private static long s_lastId;

    private readonly long _id = Interlocked.Increment(ref s_lastId);
    private readonly Coherence _coherence;
    private readonly FreshScope? _parent;
    private readonly List<SharedEntityState> _tracked = [];
    private readonly Lock _sync = new();
    private int _busy;
    private bool _disposed;

    internal FreshScope(Coherence coherence)
    {
        _coherence = coherence;
        _parent = Ambient.Value;
        Ambient.Value = this;
    }

    /// <summary>The id of the current flow's innermost scope (of any runtime), or 0 outside every scope.</summary>
    internal static long CurrentIdOnThread => t_currentId;

    /// <summary>This scope's id, unique in the process.</summary>
    internal long Id => _id;

    /// <summary>The runtime this scope belongs to.</summary>
    public Coherence Coherence => _coherence;

    /// <summary>Whether the scope is still open.</summary>
    public bool IsActive => !_disposed;

    /// <summary>The number of entities the scope tracks.</summary>
    public int TrackedCount
    {
        get
        {
            lock (_sync)
            {
                return _tracked.Count;
            }
        }
    }

    /// <summary>Tracks an attached entity: it will be checked with the scope's next batch. Returns the entity.</summary>
    /// <exception cref="InvalidOperationException">The entity is not attached to this scope's runtime.</exception>
    public T Track<T>(T entity)
        where T : class, ISharedEntity
    {
        Track(StateOf(entity));
        return entity;
    }

    /// <summary>Checks now, in one batch, every tracked entity not yet checked in this scope.</summary>
    /// <exception cref="EntityDeletedException">A tracked entity was deleted.</exception>
    /// <exception cref="StaleEntityException">An entity written in this scope was committed by another process meanwhile.</exception>
    /// <exception cref="StaleSnapshotException">A reload could not see the newest commit (an old transaction snapshot).</exception>
    public Task CheckAsync(CancellationToken cancellationToken = default) => CheckAsync([], cancellationToken);

    /// <summary>Tracks <paramref name="entities"/> and checks them with every other pending entity, in one batch.</summary>
    /// <inheritdoc cref="CheckAsync(CancellationToken)" path="/exception"/>
    public async Task CheckAsync(IEnumerable<ISharedEntity> entities, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entities);
        foreach (ISharedEntity entity in entities)
        {
            Track(StateOf(entity));
        }

        await CheckPendingAsync(async: true, cancellationToken).ConfigureAwait(false);
        ThrowFirstFailure();
    }

    /// <summary>Synchronous <see cref="CheckAsync(CancellationToken)"/>.</summary>
    /// <inheritdoc cref="CheckAsync(CancellationToken)" path="/exception"/>
    public void Check()
    {
        SyncPath.Complete(CheckPendingAsync(async: false, CancellationToken.None));
        ThrowFirstFailure();
    }

    /// <summary>Marks an attached entity for deletion: <see cref="CommitAsync"/> deletes its row and leaves a tombstone.</summary>
    public void Delete(ISharedEntity entity)
    {
        SharedEntityState state = StateOf(entity);
        lock (_sync)
        {
            TrackLocked(state);
            state.DeleteRequested = true;
        }
    }

    /// <summary>
    /// Writes every entity changed (or deleted) in this scope since the last commit: in one database transaction per
    /// loader, each row guarded by its version; raises the entities' dirty tokens; commits; then publishes the new
    /// versions. The scope stays open: its entities stay fresh and further changes can be committed again.
    /// </summary>
    /// <exception cref="StaleEntityException">Another process committed one of the entities first; nothing was written.</exception>
    /// <exception cref="SharedStoreUnavailableException">The store could not take a dirty token; nothing was written.</exception>
    public async Task CommitAsync(CancellationToken cancellationToken = default)
    {
        List<SharedEntityState> writes;
        lock (_sync)
        {
            ThrowIfDisposed();
            writes = _tracked.FindAll(static s => s.Written || s.DeleteRequested);
        }

        EnterBusy();
        try
        {
            foreach (IGrouping<IEntityLoader, SharedEntityState> group in writes.GroupBy(static s => s.Loader))
            {
                await WriteProtocol.CommitAsync(Coherence, group.Key, [.. group], cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ExitBusy();
        }
    }

    /// <summary>Ends the scope. Changes not committed are discarded: those entities reload at their next check.</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (SharedEntityState state in _tracked)
            {
                if (!ReferenceEquals(Volatile.Read(ref state.TrackedBy), this))
                {
                    continue; // an inner scope took it over
                }

                if (state.FreshIn == _id)
                {
                    state.FreshIn = NoScope;
                }

                state.MustReload |= state.Written;
                state.Written = false;
                state.DeleteRequested = false;
                state.Failure = null;

                // Last, and only if no inner scope took it meanwhile: a scope of another flow waits for this lock
                // before it takes the entity from a disposed scope (TrackLocked).
                Interlocked.CompareExchange(ref state.TrackedBy, null, this);
            }

            _tracked.Clear();
        }

        // Only the flow that began the scope can end it as ambient; elsewhere it is skipped as disposed.
        if (ReferenceEquals(Ambient.Value, this))
        {
            Ambient.Value = _parent;
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The innermost open scope of <paramref name="coherence"/> in the current flow.</summary>
    internal static FreshScope? FindCurrent(Coherence coherence)
    {
        for (FreshScope? scope = Ambient.Value; scope is not null; scope = scope._parent)
        {
            if (!scope._disposed && ReferenceEquals(scope._coherence, coherence))
            {
                return scope;
            }
        }

        return null;
    }

    /// <summary>Called on first touch of an entity in this scope: checks it (and every pending entity) or throws why not.</summary>
    internal void EnsureFresh(SharedEntityState state)
    {
        if (state.FreshIn == _id)
        {
            return;
        }

        Track(state);
        if (state.Failure is null)
        {
            SyncPath.Complete(CheckPendingAsync(async: false, CancellationToken.None));
        }

        if (state.Failure is { } failure)
        {
            throw failure;
        }
    }

    internal void RecordWrite(SharedEntityState state)
    {
        lock (_sync)
        {
            TrackLocked(state);
            state.Written = true;
        }
    }

    internal void Track(SharedEntityState state)
    {
        lock (_sync)
        {
            TrackLocked(state);
        }
    }

    private void ThrowFirstFailure()
    {
        lock (_sync)
        {
            foreach (SharedEntityState state in _tracked)
            {
                if (ReferenceEquals(state.TrackedBy, this) && state.Failure is { } failure)
                {
                    throw failure;
                }
            }
        }
    }

    private SharedEntityState StateOf(ISharedEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        SharedEntityState state = entity.SharedState
            ?? throw new InvalidOperationException(
                $"{entity.SharedType.Name} {entity.SharedKey} is not attached. Load it through a loader (EF Core attaches on materialization) or call Coherence.Attach.");
        return ReferenceEquals(state.Coherence, _coherence)
            ? state
            : throw new InvalidOperationException($"{entity.SharedType.Name} {entity.SharedKey} is attached to another Coherence than this scope's.");
    }

    private void TrackLocked(SharedEntityState state)
    {
        ThrowIfDisposed();
        while (true)
        {
            FreshScope? owner = Volatile.Read(ref state.TrackedBy);
            if (ReferenceEquals(owner, this))
            {
                return;
            }

            if (owner is not null)
            {
                if (Volatile.Read(ref owner._disposed))
                {
                    // Its Dispose may still be letting go of its entities, under its lock: wait for it to finish.
                    lock (owner._sync)
                    {
                    }
                }
                else if (!IsInChain(_parent, owner) && !IsInChain(Ambient.Value, owner))
                {
                    throw HeldByAnotherFlow(state);
                }
            }

            // One compare-and-swap: of two flows that find the entity free, one takes it and the other sees it held.
            if (ReferenceEquals(Interlocked.CompareExchange(ref state.TrackedBy, this, owner), owner))
            {
                // An entity follows the innermost scope that touches it; an outer scope it comes back to checks it again.
                if (owner is not null && state.FreshIn == owner._id)
                {
                    state.FreshIn = NoScope;
                }

                break;
            }
        }

        state.Failure = null;
        _tracked.Add(state);
    }

    // Whether owner is scope or one of its outer scopes: the same flow, which may hand the entity from scope to scope.
    private static bool IsInChain(FreshScope? scope, FreshScope owner)
    {
        for (; scope is not null; scope = scope._parent)
        {
            if (ReferenceEquals(scope, owner))
            {
                return true;
            }
        }

        return false;
    }

    private static InvalidOperationException HeldByAnotherFlow(SharedEntityState state) => new(
        $"{state.Type.Name} {state.Entity.SharedKey} is held by a scope of another flow that is still open: one entity instance serves one " +
        "flow at a time (its values are reloaded in place, and its writes belong to one scope). Each flow must read its own instance: find " +
        "it by key in the flow's scope (FindSharedAsync on the flow's DbContext, DbEntityLoader.FindAsync, or a query; the entity cache makes " +
        "that cheap) " +
        "instead of sharing one object, held in a static or a singleton, between concurrent requests.");

    private async ValueTask CheckPendingAsync(bool async, CancellationToken cancellationToken)
    {
        List<SharedEntityState> pending;
        lock (_sync)
        {
            ThrowIfDisposed();
            pending = _tracked.FindAll(s => ReferenceEquals(s.TrackedBy, this) && s.FreshIn != _id && s.Failure is null);
        }

        if (pending.Count == 0)
        {
            return;
        }

        EnterBusy();
        try
        {
            await FreshnessCheck.RunAsync(Coherence, pending, this, async, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ExitBusy();
        }
    }

    private void EnterBusy()
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException(
                "A check or commit started in this FreshScope while another was running. A scope serves one flow at a time " +
                "(like a DbContext): await each operation before the next, and do not read shared properties from inside a loader.");
        }
    }

    private void ExitBusy() => Volatile.Write(ref _busy, 0);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
