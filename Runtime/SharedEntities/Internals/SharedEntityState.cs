using System.ComponentModel;
using System.Runtime.CompilerServices;
using SharedEntities.Loading;

namespace SharedEntities.Internals;

/// <summary>
/// What the runtime knows about one attached entity instance: its store key, its loader, and in which scope it was
/// last found fresh. For the code the generator writes: generated accessors call <see cref="OnRead"/> and
/// <see cref="OnWrite"/>, and the generated <see cref="ISharedEntity.SharedState"/> holds it. Using it anywhere else
/// is reported as warning SE9100.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[Obsolete(ForGeneratedCode.Message, DiagnosticId = ForGeneratedCode.DiagnosticId)]
public sealed class SharedEntityState
{
    // The id of the scope in which the entity was last found fresh, or FreshScope.NoScope. The getter's fast path is one
    // comparison of this field with the thread's current scope: no lock, no lookup, no allocation.
    internal long FreshIn = FreshScope.NoScope;

    internal SharedEntityState(Coherence coherence, ISharedEntity entity, IEntityLoader loader, string storeKey)
    {
        Coherence = coherence;
        Entity = entity;
        Loader = loader;
        StoreKey = storeKey;
    }

    internal Coherence Coherence { get; }

    internal ISharedEntity Entity { get; }

    internal IEntityLoader Loader { get; set; }

    internal string StoreKey { get; }

    internal SharedEntityType Type => Entity.SharedType;

    internal bool IsVersioned => Entity is IVersionedSharedEntity;

    /// <summary>
    /// The scope that tracks the entity (checks it, commits its writes). It changes hands by compare-and-swap
    /// (<see cref="FreshScope"/>), so that two flows can never both take one instance.
    /// </summary>
    internal FreshScope? TrackedBy;

    // Below: guarded by the tracking scope's lock.

    /// <summary>Why the last check refused the entity (deleted, conflicting); thrown when it is touched again.</summary>
    internal Exception? Failure { get; set; }

    /// <summary>A shared property was written in <see cref="TrackedBy"/> since its last commit.</summary>
    internal bool Written { get; set; }

    /// <summary><see cref="FreshScope.Delete"/> was called in <see cref="TrackedBy"/>.</summary>
    internal bool DeleteRequested { get; set; }

    /// <summary>The local values are not those of the local version (writes were discarded): reload before use.</summary>
    internal bool MustReload { get; set; }

    /// <summary>Serial-only: the store serial the local values correspond to, when known.</summary>
    internal long? Serial { get; set; }

    internal long LocalVersion => ((IVersionedSharedEntity)Entity).SharedVersion;

    /// <summary>Called by a generated getter before it returns the value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void OnRead(SharedEntityState? state)
    {
        if (state is not null && state.FreshIn != FreshScope.CurrentIdOnThread)
        {
            state.CheckSlow();
        }
    }

    /// <summary>Called by a generated setter before it stores the value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void OnWrite(SharedEntityState? state)
    {
        if (state is not null)
        {
            state.RecordWrite();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CheckSlow()
    {
        FreshScope? scope = FreshScope.FindCurrent(Coherence);
        if (scope is not null)
        {
            scope.EnsureFresh(this);
            return;
        }

        if (Coherence.Options.OutsideScopeReads == OutsideScopeReads.Throw)
        {
            throw new ReadOutsideScopeException(Type.Name, Entity.SharedKey);
        }

        Coherence.CheckOutsideScope(this);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RecordWrite() => FreshScope.FindCurrent(Coherence)?.RecordWrite(this);
}
