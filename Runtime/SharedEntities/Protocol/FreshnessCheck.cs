using SharedEntities.Internals;
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
        Conflict,
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
            verdicts[i] = states[i].IsVersioned ? FromToken(coherence, states[i], reads[i]) : FromSerial(coherence, states[i], reads[i]);
            settled &= verdicts[i].Outcome is Outcome.Fresh or Outcome.Deleted;
        }

        if (!settled)
        {
            await AskDatabaseAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            await FillLeasesAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            await SeedSerialsAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            if (await ReloadAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false))
            {
                // Tokens the reloads showed ahead of the database where the row cannot move past them: replaced from
                // a locking read, as a miss would be; a row found newer still reloads once more.
                await FillLeasesAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
                await ReloadAsync(coherence, states, verdicts, async, cancellationToken).ConfigureAwait(false);
            }
        }

        for (int i = 0; i < states.Count; i++)
        {
            SharedEntityState state = states[i];
            switch (verdicts[i].Outcome)
            {
                case Outcome.Fresh:
                    coherence.Cache.Checked(state.StoreKey);
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
    private static Verdict FromToken(Coherence coherence, SharedEntityState state, StoreResult result)
    {
        SharedEntitiesMetrics metrics = coherence.Metrics;
        switch (result.Status)
        {
            case StoreStatus.Hit:
                var token = new SharedToken(result.Value);
                long local = state.LocalVersion;
                if (token.IsClean && token.Version == local)
                {
                    return state.MustReload ? Verdict.ReloadTo(local) : Verdict.Fresh;
                }

                if (TokenDamage.Of(token, local) is { } damage)
                {
                    return Damaged(coherence, state, result.Cas, token.ToString(), damage);
                }

                if (token.IsClean)
                {
                    return Verdict.ReloadTo(token.Version) with { Cas = result.Cas };
                }

                // Dirty (a write in flight) or deleted (confirmed by the database, so that a token written outside
                // the library cannot make a live row unreadable): only the database can tell. The version a token
                // claims is remembered: a row found below it is ahead of nothing in flight, and is repaired.
                metrics.Fallbacks.Add(1);
                return Verdict.AskDatabase with { Ahead = token.IsDeleted ? token.Version : token.Version - 1, Cas = result.Cas };

            case StoreStatus.Damaged:
                return Damaged(coherence, state, result.Cas, "a value that is not a token", "something other than this library wrote it");

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

    // A value the library cannot have written for this entity is treated as a miss that this reader won: a locking
    // read of the database, then a fill by CAS over exactly the value seen (which fails harmlessly if anyone changed it).
    private static Verdict Damaged(Coherence coherence, SharedEntityState state, ulong cas, string found, string why)
    {
        coherence.Metrics.DamagedTokens.Add(1);
        coherence.Metrics.Fallbacks.Add(1);
        Log.DamagedToken(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), found, why);
        return cas == 0 ? Verdict.AskDatabase : new Verdict(Outcome.Fill, Cas: cas);
    }

    // Serial-only: equal serials mean fresh; anything else reloads.
    private static Verdict FromSerial(Coherence coherence, SharedEntityState state, StoreResult result)
    {
        SharedEntitiesMetrics metrics = coherence.Metrics;
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
            case StoreStatus.Damaged:
                // Re-seeded over exactly the value seen, as a miss would be.
                metrics.DamagedTokens.Add(1);
                Log.DamagedToken(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), "a value that is not a serial", "something other than this library wrote it");
                return new Verdict(Outcome.Seed, Cas: result.Cas);
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
                verdicts[indexes[j]] = FromDatabaseVersion(coherence, states[indexes[j]], versions[j], verdicts[indexes[j]]);
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
            IReadOnlyList<long?>? versions = await LockedFill.RunAsync(
                coherence,
                group.Key,
                entities,
                [.. indexes.Select(i => states[i].StoreKey)],
                [.. indexes.Select(i => verdicts[i].Cas)],
                async,
                cancellationToken).ConfigureAwait(false);
            if (versions is null)
            {
                // A writer holds the rows longer than DatabaseWaitTimeout: the lease is given up, and the placeholder
                // sends the other readers to the database until it expires (LeaseTtl). A plain version read needs no lock.
                foreach (int i in indexes)
                {
                    verdicts[i] = Verdict.AskDatabase;
                }

                gaveUp = true;
                continue;
            }

            // A missing row filled nothing: its deletion's token is gone, and the placeholder sends the other readers to
            // the database until it expires.
            for (int j = 0; j < indexes.Length; j++)
            {
                verdicts[indexes[j]] = FromDatabaseVersion(coherence, states[indexes[j]], versions[j]);
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
            StoreOperationKind kind = verdicts[i].Cas == 0 ? StoreOperationKind.AddIfAbsent : StoreOperationKind.Fill;
            adds.Add(new StoreOperation(kind, states[i].StoreKey, seed, Cas: verdicts[i].Cas, Ttl: coherence.Options.TokenTtlFor(states[i].Type.Name)));
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

    // Returns whether some entity now waits for a fill: a token the reload showed ahead of the database that is
    // replaced from a locking read instead of moving the row past it.
    private static async ValueTask<bool> ReloadAsync(
        Coherence coherence, List<SharedEntityState> states, Verdict[] verdicts, bool async, CancellationToken cancellationToken)
    {
        bool refill = false;
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
                    verdicts[i] = new Verdict(Outcome.Conflict);
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
            List<(int Index, WriteProtocol.PendingWrite Write)>? repairs = null;
            for (int j = 0; j < indexes.Count; j++)
            {
                int index = indexes[j];
                SharedEntityState state = states[index];
                Verdict verdict = verdicts[index];
                if (!found[j])
                {
                    verdicts[index] = Verdict.Deleted;
                    continue;
                }

                if (state.IsVersioned && state.LocalVersion < verdict.Value)
                {
                    bool inTransaction = group.Key.ReadsInTransaction;
                    if (verdict.Cas != 0 && TokenDamage.IsReplacedInsteadOfRepaired(verdict.Value, state.LocalVersion, inTransaction))
                    {
                        // Inside a transaction the reload may have seen an old snapshot, or the token may be ahead of
                        // the database: a locking read tells (a newer row is the snapshot's fault, and then the next
                        // reload throws StaleSnapshotException), and fills the row's token by CAS over the one seen.
                        // Far ahead of the row, a token is no version any process can hold: it is replaced the same way.
                        if (!inTransaction)
                        {
                            coherence.Metrics.StoreAhead.Add(1);
                            Log.DatabaseBehind(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), state.LocalVersion, "store's token of version", verdict.Value);
                        }

                        verdicts[index] = new Verdict(Outcome.Fill, Cas: verdict.Cas);
                        refill = true;
                        continue;
                    }

                    if (inTransaction)
                    {
                        throw new StaleSnapshotException(state.Type.Name, state.Entity.SharedKey, verdict.Value, state.LocalVersion);
                    }

                    // Outside any transaction the reload saw the newest commit: the store is ahead of the database.
                    coherence.Metrics.StoreAhead.Add(1);
                    Log.DatabaseBehind(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), state.LocalVersion, "store's token of version", verdict.Value);
                }

                if (state.IsVersioned && Math.Max(verdict.Value, verdict.Ahead) > state.LocalVersion)
                {
                    // The database wins, and its row moves past every version the store or this process has seen, so
                    // that no copy of an older history can ever match it.
                    (repairs ??= []).Add((index, new(state, WriteProtocol.WriteKind.Advance, Math.Max(verdict.Value, verdict.Ahead) + 1)));
                }

                state.Serial = state.IsVersioned ? null : verdict.SerialKnown ? verdict.Value : null;
                verdicts[index] = verdict with { Outcome = Outcome.Fresh };
            }

            if (repairs is not null)
            {
                foreach ((int index, _) in await RepairAsync(coherence, group.Key, repairs, async, cancellationToken).ConfigureAwait(false))
                {
                    // The row could not move past the token (its version column is full, say): the token comes down
                    // to the row instead, from a locking read.
                    if (verdicts[index].Cas != 0)
                    {
                        verdicts[index] = new Verdict(Outcome.Fill, Cas: verdicts[index].Cas);
                        refill = true;
                    }
                }
            }
        }

        return refill;
    }

    // Returns the repairs that failed. A failed repair leaves the entity fresh at the database's version for this
    // check (the database wins); the caller decides what becomes of its token.
    private static async ValueTask<List<(int Index, WriteProtocol.PendingWrite Write)>> RepairAsync(
        Coherence coherence, IEntityLoader loader, List<(int Index, WriteProtocol.PendingWrite Write)> repairs, bool async, CancellationToken cancellationToken)
    {
        var failed = new List<(int Index, WriteProtocol.PendingWrite Write)>();
        foreach ((int index, WriteProtocol.PendingWrite repair) in repairs)
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
                Log.RepairFailed(coherence.Logger, repair.State.Type.Name, coherence.KeyForLog(repair.State.StoreKey), ex);
                failed.Add((index, repair));
            }
        }

        return failed;
    }

    // token: what the store said, when it claimed a version (Ahead) that the database may not have.
    private static Verdict FromDatabaseVersion(Coherence coherence, SharedEntityState state, long? version, Verdict token = default)
    {
        long local = state.LocalVersion;
        bool inTransaction = state.Loader.ReadsInTransaction;
        switch (version)
        {
            case null:
                return Verdict.Deleted;
            case { } v when token.Ahead > v && token.Cas != 0 && TokenDamage.IsReplacedInsteadOfRepaired(token.Ahead, v, inTransaction):
                // A dirty or deleted token ahead of the row, where the row cannot move past it (inside a transaction,
                // or so far that no process can hold such a version): replaced from a locking read, as a miss would be.
                coherence.Metrics.StoreAhead.Add(1);
                Log.DatabaseBehind(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), v, "store's token of version", token.Ahead);
                return new Verdict(Outcome.Fill, Cas: token.Cas);
            case { } v when token.Ahead > v && !inTransaction:
                // The row lives below its deletion's token (or below a write that never happened): reload it and move
                // it past the token, or every write of it would find the store ahead until the token expires.
                coherence.Metrics.StoreAhead.Add(1);
                Log.DatabaseBehind(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), v, "store's token of version", token.Ahead);
                return new Verdict(Outcome.Reload, v, Cas: token.Cas, Ahead: token.Ahead);
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
                Log.DatabaseBehind(coherence.Logger, state.Type.Name, coherence.KeyForLog(state.StoreKey), v, "copy this process holds, at version", local);
                return new Verdict(Outcome.Reload, v, Ahead: local);
        }
    }

    private static IEnumerable<IGrouping<IEntityLoader, int>> IndexesWith(List<SharedEntityState> states, Verdict[] verdicts, Outcome outcome) =>
        Enumerable.Range(0, states.Count).Where(i => verdicts[i].Outcome == outcome).GroupBy(i => states[i].Loader);

    /// <param name="Outcome">What to do next.</param>
    /// <param name="Value">Reload: the lowest acceptable version, or the serial to record.</param>
    /// <param name="Cas">Fill: the CAS of the lease placeholder or of the token to replace; otherwise the CAS of the token read, if any.</param>
    /// <param name="SerialKnown">Serial-only reload: whether <paramref name="Value"/> is a serial read before the reload.</param>
    /// <param name="Ahead">A version the store or this process claims that the database may not have (its row then moves past it).</param>
    private readonly record struct Verdict(Outcome Outcome, long Value = 0, ulong Cas = 0, bool SerialKnown = false, long Ahead = 0)
    {
        public static Verdict Fresh => new(Outcome.Fresh);

        public static Verdict Deleted => new(Outcome.Deleted);

        public static Verdict AskDatabase => new(Outcome.AskDatabase);

        public static Verdict ReloadTo(long minimumVersion) => new(Outcome.Reload, minimumVersion);

        public static Verdict ReloadWithSerial(long? serial) => new(Outcome.Reload, serial ?? 0, SerialKnown: serial is not null);
    }
}
