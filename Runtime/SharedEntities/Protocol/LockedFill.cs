using SharedEntities.Loading;
using SharedEntities.Stores;

namespace SharedEntities.Protocol;

/// <summary>
/// The lease winner's fill (docs/protocol.md, "Fill"), shared by the check (<see cref="FreshnessCheck"/>) and reads by
/// key from the entity cache: the versions read under a lock that keeps writers of those rows out, a fill of
/// clean(version) by CAS over exactly the item seen, and only then the release. A missing row fills nothing.
/// </summary>
internal static class LockedFill
{
    /// <summary>
    /// Fills the tokens of <paramref name="entities"/> (store keys <paramref name="keys"/>, CAS of the placeholder or of
    /// the value to replace <paramref name="cas"/>) and returns the versions read under the lock, or
    /// <see langword="null"/> when, outside an application transaction, the locking read waited longer than
    /// <see cref="CoherenceOptions.DatabaseWaitTimeout"/>: the lease is given up (its placeholder expires) and nothing is
    /// filled — filling without the lock could publish a version that a commit is about to replace.
    /// </summary>
    public static async ValueTask<IReadOnlyList<long?>?> RunAsync(
        Coherence coherence,
        IEntityLoader loader,
        IReadOnlyList<IVersionedSharedEntity> entities,
        IReadOnlyList<string> keys,
        IReadOnlyList<ulong> cas,
        bool async,
        CancellationToken cancellationToken)
    {
        IVersionLock versionLock;
        try
        {
            versionLock = async
                ? await loader.LockVersionsAsync(entities, cancellationToken).ConfigureAwait(false)
                : loader.LockVersions(entities);
        }
        catch (DatabaseWaitTimeoutException timedOut) when (!loader.ReadsInTransaction)
        {
            Log.LeaseFillTimedOut(coherence.Logger, timedOut.EntityName, entities.Count, timedOut);
            coherence.Metrics.Fallbacks.Add(entities.Count);
            return null;
        }

        try
        {
            // A failed fill costs nothing but a later miss: the versions returned come from the database either way.
            var fills = new StoreBatch();
            for (int i = 0; i < entities.Count; i++)
            {
                if (versionLock.Versions[i] is { } version)
                {
                    fills.Add(new StoreOperation(
                        StoreOperationKind.Fill, keys[i], SharedToken.Clean(version).Value, Cas: cas[i], Ttl: coherence.Options.TokenTtlFor(entities[i].SharedType.Name)));
                }
            }

            if (fills.Count > 0)
            {
                await coherence.ExecuteAsync(fills, async, cancellationToken).ConfigureAwait(false);
            }

            return [.. versionLock.Versions];
        }
        finally
        {
            if (async)
            {
                await versionLock.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                versionLock.Dispose();
            }
        }
    }
}
