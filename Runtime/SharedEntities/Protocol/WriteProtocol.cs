using SharedEntities.Loading;

namespace SharedEntities.Protocol;

/// <summary>A scope's commit for the entities of one loader: guarded writes, dirty tokens, commit, publish.</summary>
internal static class WriteProtocol
{
    public static async Task CommitAsync(
        Coherence coherence, IEntityLoader loader, List<SharedEntityState> states, CancellationToken cancellationToken)
    {
        foreach (SharedEntityState state in states)
        {
            if (state.Failure is { } failure)
            {
                throw failure;
            }
        }

        var publication = new WritePublication(coherence);
        var newVersions = new long?[states.Count];
        IEntityWriteTransaction transaction = await loader.BeginWriteAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            for (int i = 0; i < states.Count; i++)
            {
                SharedEntityState state = states[i];
                long? expected = state.IsVersioned ? state.LocalVersion : null;
                newVersions[i] = expected + 1;
                bool written = state.DeleteRequested
                    ? await transaction.DeleteAsync(state.Entity, expected, cancellationToken).ConfigureAwait(false)
                    : await transaction.UpdateAsync(state.Entity, expected, newVersions[i], cancellationToken).ConfigureAwait(false);
                if (!written)
                {
                    coherence.Metrics.Conflicts.Add(1);
                    throw new StaleEntityException(
                        state.Type.Name,
                        state.Entity.SharedKey,
                        expected,
                        $"the database refused the version-guarded {(state.DeleteRequested ? "delete" : "update")}.");
                }

                if (state.DeleteRequested)
                {
                    publication.AddDelete(state.Entity);
                }
                else
                {
                    publication.AddUpdate(state.Entity, newVersions[i]);
                }
            }

            await publication.RaiseDirtyAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        // Committed: nothing below may fail the commit, and cancellation is no longer observed.
        for (int i = 0; i < states.Count; i++)
        {
            SharedEntityState state = states[i];
            state.Written = false;
            if (state.DeleteRequested)
            {
                state.DeleteRequested = false;
                state.FreshIn = FreshScope.NoScope;
                state.Failure = new EntityDeletedException(state.Type.Name, state.Entity.SharedKey);
            }
            else if (newVersions[i] is { } version)
            {
                ((IVersionedSharedEntity)state.Entity).SharedVersion = version;
            }
        }

        coherence.Metrics.Commits.Add(1);
        await publication.PublishAsync(CancellationToken.None).ConfigureAwait(false);
    }
}
