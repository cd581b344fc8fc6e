using SharedEntities.Internals;
using SharedEntities.Loading;

namespace SharedEntities.Protocol;

/// <summary>
/// A commit for the entities of one loader (docs/protocol.md, "Writer"): the guarded statements, which take the row
/// locks; the dirty tokens, raised while those locks are held; the commit; the publish.
/// </summary>
internal static class WriteProtocol
{
    /// <summary>What a commit does to one entity.</summary>
    public enum WriteKind : byte
    {
        /// <summary>Writes the shared values; a versioned row moves to its version + 1.</summary>
        Update,

        /// <summary>Deletes the row.</summary>
        Delete,

        /// <summary>Moves the row's version to <see cref="PendingWrite.NewVersion"/> and writes nothing else (a store-ahead repair).</summary>
        Advance,
    }

    /// <summary>One entity's part of a commit.</summary>
    public readonly record struct PendingWrite(SharedEntityState State, WriteKind Kind, long? NewVersion);

    /// <summary>Commits the writes a scope recorded for <paramref name="states"/>.</summary>
    public static Task CommitAsync(Coherence coherence, IEntityLoader loader, List<SharedEntityState> states, CancellationToken cancellationToken)
    {
        foreach (SharedEntityState state in states)
        {
            if (state.Failure is { } failure)
            {
                throw failure;
            }
        }

        var writes = new PendingWrite[states.Count];
        for (int i = 0; i < states.Count; i++)
        {
            SharedEntityState state = states[i];
            writes[i] = new PendingWrite(state, state.DeleteRequested ? WriteKind.Delete : WriteKind.Update, state.IsVersioned ? state.LocalVersion + 1 : null);
        }

        return RunAsync(coherence, loader, writes, cancellationToken);
    }

    /// <summary>Runs <paramref name="writes"/> in one database transaction of <paramref name="loader"/>.</summary>
    public static async Task RunAsync(Coherence coherence, IEntityLoader loader, IReadOnlyList<PendingWrite> writes, CancellationToken cancellationToken)
    {
        var publication = new WritePublication(coherence);
        // A repair runs inside a check: its waits are bounded (CoherenceOptions.DatabaseWaitTimeout).
        IEntityWriteTransaction transaction = writes.Count > 0 && writes.All(w => w.Kind == WriteKind.Advance)
            ? await loader.BeginRepairAsync([.. writes.Select(w => (IVersionedSharedEntity)w.State.Entity)], cancellationToken).ConfigureAwait(false)
            : await loader.BeginWriteAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            // 1. The guarded statements: each takes its row's lock until the commit.
            foreach (PendingWrite write in writes)
            {
                SharedEntityState state = write.State;
                long? expected = state.IsVersioned ? state.LocalVersion : null;
                bool written = write.Kind switch
                {
                    WriteKind.Delete => await transaction.DeleteAsync(state.Entity, expected, cancellationToken).ConfigureAwait(false),
                    WriteKind.Advance => await transaction.AdvanceVersionAsync(
                        (IVersionedSharedEntity)state.Entity, expected!.Value, write.NewVersion!.Value, cancellationToken).ConfigureAwait(false),
                    _ => await transaction.UpdateAsync(state.Entity, expected, write.NewVersion, cancellationToken).ConfigureAwait(false),
                };
                if (!written)
                {
                    coherence.Metrics.Conflicts.Add(1);
                    throw new StaleEntityException(
                        state.Type.Name,
                        state.Entity.SharedKey,
                        expected,
                        $"the database refused the version-guarded {(write.Kind == WriteKind.Delete ? "delete" : "update")}.");
                }

                if (write.Kind == WriteKind.Delete)
                {
                    publication.AddDelete(state.Entity);
                }
                else
                {
                    publication.AddUpdate(state.Entity, write.NewVersion);
                }
            }

            // 2. The dirty tokens, while the row locks are held. 3. The commit.
            await publication.RaiseDirtyAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        // Committed: nothing below may fail the commit, and cancellation is no longer observed.
        foreach (PendingWrite write in writes)
        {
            if (write.Kind != WriteKind.Delete && write.NewVersion is { } version)
            {
                ((IVersionedSharedEntity)write.State.Entity).SharedVersion = version;
            }
        }

        publication.MarkCommitted();
        coherence.Metrics.Commits.Add(1);

        // 4. The publish.
        await publication.PublishAsync(CancellationToken.None).ConfigureAwait(false);
    }
}
