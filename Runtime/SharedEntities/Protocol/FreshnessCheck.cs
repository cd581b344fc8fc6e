using SharedEntities.Loading;
using SharedEntities.Stores;

namespace SharedEntities.Protocol;

/// <summary>
/// The reader's side of the protocol (docs/protocol.md, "Reader"): one store batch for all entities, then the
/// database only for the entities the store cannot vouch for, grouped per loader.
/// </summary>
internal static class FreshnessCheck
{
    private enum Outcome : byte
    {
        Fresh,
        Reload,
        AskDatabase,
        Fill,
        Seed,
        Deleted,
    }

    /// <summary>
    /// Checks <paramref name="states"/>. Afterwards each one is fresh in <paramref name="scope"/> (or, with no scope,
    /// verified once) or carries a <see cref="SharedEntityState.Failure"/> to throw when it is touched. A reload that
    /// sees an old snapshot throws <see cref="StaleSnapshotException"/> at once: no entity of the batch can be trusted.
    /// </summary>
    public static async ValueTask RunAsync(
        Coherence coherence, List<SharedEntityState> states, FreshScope? scope, bool async, CancellationToken cancellationToken)
    {
        CoherenceOptions options = coherence.Options;
        SharedEntitiesMetrics metrics = coherence.Metrics;
        var verdicts = new Verdict[states.Count];

        var reads = new StoreBatch();
        foreach (SharedEntityState state in states)
        {
            reads.AddRead(state.StoreKey, state.IsVersioned ? options.LeaseTtl : TimeSpan.Zero);
        }

        await coherence.ExecuteAsync(reads, async, cancellationToken).ConfigureAwait(false);
        metrics.Checks.Add(states.Count);
        bool settled = true; // the common case: every entity fresh (or deleted), nothing to ask the database
        for (int i = 0; i < states.Count; i++)
        {
            verdicts[i] = states[i].IsVersioned ? FromToken(states[i], reads[i], metrics) : FromSerial(states[i], reads[i], metrics);
            settled &= verdicts[i].Outcome is Outcome.Fresh or Outcome.Deleted;
        }

        if (!settled)
        {
            await AskDatabaseAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            await FillLeasesAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            await SeedSerialsAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            await ReloadAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
        }

        for (int i = 0; i < states.Count; i++)
        {
            SharedEntityState state = states[i];
            switch (verdicts[i].Outcome)
            {
                case Outcome.Fresh:
                    state.Failure = null;
                    state.MustReload = false;
                    state.FreshIn = scope?.Id ?? FreshScope.NoScope;
                    break;
                case Outcome.Deleted:
                    state.Failure = new EntityDeletedException(state.Type.Name, state.Entity.SharedKey);
                    break;
                default:
                    // A conflict found by ReloadAsync already set Failure.
                    break;
            }
        }
    }

    // Versioned: what the token says about local version L.
    private static Verdict FromToken(SharedEntityState state, StoreResult result, SharedEntitiesMetrics metrics)
    {
        switch (result.Status)
        {
            case StoreStatus.Hit:
                var token = new SharedToken(result.Value);
                long local = state.LocalVersion;
                if (token.IsClean && token.Version == local)
                {
                    return state.MustReload ? Verdict.ReloadTo(local) : Verdict.Fresh;
                }

                if (token.IsClean && token.Version > local)
                {
                    return Verdict.ReloadTo(token.Version);
                }

                // Dirty (a write in flight), deleted (confirmed by the database, so that a token written outside the
                // library cannot make a live row unreadable), older than our copy, or not a token of ours: only the
                // database can tell. A deletion's version is remembered: a row found there below it is ahead of
                // nothing in flight, and is moved past it (a row created again at a lower version, a restore).
                metrics.Fallbacks.Add(1);
                return token.IsDeleted ? Verdict.AskDatabase with { Ahead = token.Version } : Verdict.AskDatabase;

            case StoreStatus.LeaseWon:
                metrics.Misses.Add(1);
                metrics.LeasesWon.Add(1);
                return new Verdict(Outcome.Fill, Cas: result.Cas);

            case StoreStatus.LeaseLost:
                metrics.Misses.Add(1);
                metrics.LeasesLost.Add(1);
                metrics.Fallbacks.Add(1);
                return Verdict.AskDatabase;

            case StoreStatus.Miss:
                metrics.Misses.Add(1);
                metrics.Fallbacks.Add(1);
                return Verdict.AskDatabase;

            default:
                // Unavailable or failed: never fresh; the database answers instead.
                metrics.Fallbacks.Add(1);
                return Verdict.AskDatabase;
        }
    }

    // Serial-only: equal serials mean fresh; anything else reloads.
    private static Verdict FromSerial(SharedEntityState state, StoreResult result, SharedEntitiesMetrics metrics)
    {
        switch (result.Status)
        {
            case StoreStatus.Hit when new SharedToken(result.Value).IsTombstone:
                return Verdict.Deleted;
            case StoreStatus.Hit when state.Serial == result.Value && !state.MustReload:
                return Verdict.Fresh;
            case StoreStatus.Hit:
                return Verdict.ReloadWithSerial(result.Value);
            case StoreStatus.Miss or StoreStatus.LeaseLost or StoreStatus.LeaseWon:
                metrics.Misses.Add(1);
                return new Verdict(Outcome.Seed);
            default:
                metrics.Fallbacks.Add(1);
                return Verdict.ReloadWithSerial(null);
        }
    }

    // Versioned entities the store could not vouch for: read their versions from the database (no caching).
    private static async ValueTask AskDatabaseAsync(
        Coherence coherence, List<SharedEntityState> states, Verdict[] verdicts, bool async, CancellationToken cancellationToken)
    {
        foreach (IGrouping<IEntityLoader, int> group in IndexesWith(states, verdicts, Outcome.AskDatabase))
        {
            int[] indexes = [.. group];
            IVersionedSharedEntity[] entities = [.. indexes.Select(i => (IVersionedSharedEntity)states[i].Entity)];
            var versions = new long?[indexes.Length];
            if (async)
            {
                await group.Key.ReadVersionsAsync(entities, versions, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                group.Key.ReadVersions(entities, versions);
            }

            for (int j = 0; j < indexes.Length; j++)
            {
                verdicts[indexes[j]] = FromDatabaseVersion(coherence, states[indexes[j]], versions[j], verdicts[indexes[j]].Ahead);
            }
        }
    }

    // Misses whose lease we won: read the versions under a lock that keeps writers out, fill, then release.
    private static async ValueTask FillLeasesAsync(
        Coherence coherence, List<SharedEntityState> states, Verdict[] verdicts, bool async, CancellationToken cancellationToken)
    {
        bool gaveUp = false;
        foreach (IGrouping<IEntityLoader, int> group in IndexesWith(states, verdicts, Outcome.Fill))
        {
            int[] indexes = [.. group];
            IVersionedSharedEntity[] entities = [.. indexes.Select(i => (IVersionedSharedEntity)states[i].Entity)];
            IVersionLock versionLock;
            try
            {
                versionLock = async
                    ? await group.Key.LockVersionsAsync(entities, cancellationToken).ConfigureAwait(false)
                    : group.Key.LockVersions(entities);
            }
            catch (DatabaseWaitTimeoutException timedOut) when (!group.Key.ReadsInTransaction)
            {
                // A writer holds the rows longer than DatabaseWaitTimeout. Give up the lease: filling without the lock
                // could publish a version its commit is about to replace, and the placeholder sends the other readers
                // to the database until it expires (LeaseTtl). A plain version read needs no lock.
                Log.LeaseFillTimedOut(coherence.Logger, timedOut.EntityName, indexes.Length, timedOut);
                coherence.Metrics.Fallbacks.Add(indexes.Length);
                foreach (int i in indexes)
                {
                    verdicts[i] = Verdict.AskDatabase;
                }

                gaveUp = true;
                continue;
            }

            try
            {
                // A missing row fills nothing: its deletion's token is gone, and the placeholder sends the other
                // readers to the database until it expires. A failed fill costs nothing but a later miss: the
                // versions below come from the database either way.
                var fills = new StoreBatch();
                for (int j = 0; j < indexes.Length; j++)
                {
                    SharedEntityState state = states[indexes[j]];
                    if (versionLock.Versions[j] is { } version)
                    {
                        fills.Add(new StoreOperation(
                            StoreOperationKind.Fill, state.StoreKey, SharedToken.Clean(version).Value, Cas: verdicts[indexes[j]].Cas, Ttl: coherence.Options.TokenTtlFor(state.Type.Name)));
                    }
                }

                if (fills.Count > 0)
                {
                    await coherence.ExecuteAsync(fills, async, cancellationToken).ConfigureAwait(false);
                }

                for (int j = 0; j < indexes.Length; j++)
                {
                    verdicts[indexes[j]] = FromDatabaseVersion(coherence, states[indexes[j]], versionLock.Versions[j]);
                }
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

        if (gaveUp)
        {
            await AskDatabaseAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
        }
    }

    // Serial-only misses: re-seed with a random 64-bit start so that a restarted store cannot replay a serial that a
    // process still holds; whoever loses the add reads the winner's serial. Either way the entity reloads.
    private static async ValueTask SeedSerialsAsync(
        Coherence coherence, List<SharedEntityState> states, Verdict[] verdicts, bool async, CancellationToken cancellationToken)
    {
        List<int> indexes = [.. Enumerable.Range(0, states.Count).Where(i => verdicts[i].Outcome == Outcome.Seed)];
        if (indexes.Count == 0)
        {
            return;
        }

        var adds = new StoreBatch();
        foreach (int i in indexes)
        {
            long seed = Random.Shared.NextInt64(1, 1L << 62);
            adds.Add(new StoreOperation(StoreOperationKind.AddIfAbsent, states[i].StoreKey, seed, Ttl: coherence.Options.TokenTtlFor(states[i].Type.Name)));
        }

        await coherence.ExecuteAsync(adds, async, cancellationToken).ConfigureAwait(false);
        var rereads = new StoreBatch();
        var rereadIndexes = new List<int>();
        for (int j = 0; j < indexes.Count; j++)
        {
            StoreResult added = adds[j];
            if (added.Status == StoreStatus.Stored)
            {
                verdicts[indexes[j]] = Verdict.ReloadWithSerial(adds.Operations[j].Value);
            }
            else if (added.Status == StoreStatus.NotStored)
            {
                rereads.AddRead(states[indexes[j]].StoreKey);
                rereadIndexes.Add(indexes[j]);
            }
            else
            {
                verdicts[indexes[j]] = Verdict.ReloadWithSerial(null);
            }
        }

        if (rereads.Count == 0)
        {
            return;
        }

        await coherence.ExecuteAsync(rereads, async, cancellationToken).ConfigureAwait(false);
        for (int j = 0; j < rereadIndexes.Count; j++)
        {
            StoreResult read = rereads[j];
            verdicts[rereadIndexes[j]] = read.Status != StoreStatus.Hit ? Verdict.ReloadWithSerial(null)
                : new SharedToken(read.Value).IsTombstone ? Verdict.Deleted
                : Verdict.ReloadWithSerial(read.Value);
        }
    }

    private static async ValueTask ReloadAsync(
        Coherence coherence, List<SharedEntityState> states, Verdict[] verdicts, bool async, CancellationToken cancellationToken)
    {
        foreach (IGrouping<IEntityLoader, int> group in IndexesWith(states, verdicts, Outcome.Reload))
        {
            var indexes = new List<int>();
            foreach (int i in group)
            {
                SharedEntityState state = states[i];
                if (state.Written || state.DeleteRequested)
                {
                    // Reloading would throw away the changes made in this scope; committing them would be a lost update.
                    coherence.Metrics.Conflicts.Add(1);
                    state.Failure = new StaleEntityException(
                        state.Type.Name,
                        state.Entity.SharedKey,
                        state.IsVersioned ? state.LocalVersion : null,
                        "this scope changed the entity without having checked it first, and those changes are based on the old values.");
                    verdicts[i] = new Verdict(Outcome.Reload);
                    continue;
                }

                indexes.Add(i);
            }

            if (indexes.Count == 0)
            {
                continue;
            }

            ISharedEntity[] entities = [.. indexes.Select(i => states[i].Entity)];
            bool[] found = new bool[indexes.Count];
            if (async)
            {
                await group.Key.ReloadAsync(entities, found, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                group.Key.Reload(entities, found);
            }

            coherence.Metrics.Reloads.Add(indexes.Count);
            List<WriteProtocol.PendingWrite>? repairs = null;
            for (int j = 0; j < indexes.Count; j++)
            {
                SharedEntityState state = states[indexes[j]];
                Verdict verdict = verdicts[indexes[j]];
                if (!found[j])
                {
                    verdicts[indexes[j]] = Verdict.Deleted;
                    continue;
                }

                if (state.IsVersioned && state.LocalVersion < verdict.Value)
                {
                    if (group.Key.ReadsInTransaction)
                    {
                        throw new StaleSnapshotException(state.Type.Name, state.Entity.SharedKey, verdict.Value, state.LocalVersion);
                    }

                    // Outside any transaction the reload saw the newest commit: the store is ahead of the database.
                    coherence.Metrics.StoreAhead.Add(1);
                    Log.DatabaseBehind(coherence.Logger, state.Type.Name, state.Entity.SharedKey, state.LocalVersion, "store's token of version", verdict.Value);
                }

                if (state.IsVersioned && Math.Max(verdict.Value, verdict.Ahead) > state.LocalVersion)
                {
                    // The database wins, and its row moves past every version the store or this process has seen, so
                    // that no copy of an older history can ever match it.
                    (repairs ??= []).Add(new(state, WriteProtocol.WriteKind.Advance, Math.Max(verdict.Value, verdict.Ahead) + 1));
                }

                state.Serial = state.IsVersioned ? null : verdict.SerialKnown ? verdict.Value : null;
                verdicts[indexes[j]] = Verdict.Fresh;
            }

            if (repairs is not null)
            {
                await RepairAsync(coherence, group.Key, repairs, async, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // A failed repair leaves the entity fresh at the database's version for this check (the database wins); the next
    // check that finds the store ahead tries again.
    private static async ValueTask RepairAsync(
        Coherence coherence, IEntityLoader loader, List<WriteProtocol.PendingWrite> repairs, bool async, CancellationToken cancellationToken)
    {
        foreach (WriteProtocol.PendingWrite repair in repairs)
        {
            try
            {
                if (async)
                {
                    await WriteProtocol.RunAsync(coherence, loader, [repair], cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    // A property getter cannot await; a repair is rare (after a restore), so it may block this one check.
                    Task.Run(() => WriteProtocol.RunAsync(coherence, loader, [repair], CancellationToken.None), CancellationToken.None).GetAwaiter().GetResult();
                }

                coherence.Metrics.Repairs.Add(1);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.RepairFailed(coherence.Logger, repair.State.Type.Name, repair.State.Entity.SharedKey, ex);
            }
        }
    }

    private static Verdict FromDatabaseVersion(Coherence coherence, SharedEntityState state, long? version, long deletedAt = 0)
    {
        long local = state.LocalVersion;
        switch (version)
        {
            case null:
                return Verdict.Deleted;
            case { } v when deletedAt > v && !state.Loader.ReadsInTransaction:
                // The row lives below its deletion's token: reload it and move it past the token, or every write of
                // it would find the store ahead until the token expires.
                coherence.Metrics.StoreAhead.Add(1);
                Log.DatabaseBehind(coherence.Logger, state.Type.Name, state.Entity.SharedKey, v, "deletion token of version", deletedAt);
                return new Verdict(Outcome.Reload, v, Ahead: deletedAt);
            case { } v when v == local:
                return state.MustReload ? Verdict.ReloadTo(local) : Verdict.Fresh;
            case { } v when v > local:
                return Verdict.ReloadTo(v);
            case { } v when state.Loader.ReadsInTransaction:
                // The database answered with a version older than one this process already saw: the read ran in an
                // old snapshot (a REPEATABLE READ transaction that began earlier).
                throw new StaleSnapshotException(state.Type.Name, state.Entity.SharedKey, local, v);
            case { } v:
                // Outside any transaction the database has gone back (a restore, a failover to a lagging replica): it
                // wins. The reload takes its row, and the repair moves its version past ours.
                coherence.Metrics.StoreAhead.Add(1);
                Log.DatabaseBehind(coherence.Logger, state.Type.Name, state.Entity.SharedKey, v, "copy this process holds, at version", local);
                return new Verdict(Outcome.Reload, v, Ahead: local);
        }
    }

    private static IEnumerable<IGrouping<IEntityLoader, int>> IndexesWith(List<SharedEntityState> states, Verdict[] verdicts, Outcome outcome) =>
        Enumerable.Range(0, states.Count).Where(i => verdicts[i].Outcome == outcome).GroupBy(i => states[i].Loader);

    /// <param name="Outcome">What to do next.</param>
    /// <param name="Value">Reload: the lowest acceptable version, or the serial to record.</param>
    /// <param name="Cas">Fill: the lease placeholder's CAS.</param>
    /// <param name="SerialKnown">Serial-only reload: whether <paramref name="Value"/> is a serial read before the reload.</param>
    /// <param name="Ahead">Reload: a version this process saw that the database no longer has (its row then moves past it).</param>
    private readonly record struct Verdict(Outcome Outcome, long Value = 0, ulong Cas = 0, bool SerialKnown = false, long Ahead = 0)
    {
        public static Verdict Fresh => new(Outcome.Fresh);

        public static Verdict Deleted => new(Outcome.Deleted);

        public static Verdict AskDatabase => new(Outcome.AskDatabase);

        public static Verdict ReloadTo(long minimumVersion) => new(Outcome.Reload, minimumVersion);

        public static Verdict ReloadWithSerial(long? serial) => new(Outcome.Reload, serial ?? 0, SerialKnown: serial is not null);
    }
}
