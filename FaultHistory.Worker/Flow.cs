using System.Diagnostics;
using System.Globalization;

namespace SharedEntities.FaultHistory;

/// <summary>What a process's flows did, added up.</summary>
internal sealed class FlowTotals
{
    private int _operations, _reads, _commits, _conflicts, _refused, _errors;

    public void Operation() => Interlocked.Increment(ref _operations);

    public void Read() => Interlocked.Increment(ref _reads);

    public void Commit() => Interlocked.Increment(ref _commits);

    public void Conflict() => Interlocked.Increment(ref _conflicts);

    public void Refused() => Interlocked.Increment(ref _refused);

    public void Error() => Interlocked.Increment(ref _errors);

    /// <summary><c>operations reads commits conflicts refused errors</c>.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Volatile.Read(ref _operations)} {Volatile.Read(ref _reads)} {Volatile.Read(ref _commits)} {Volatile.Read(ref _conflicts)} {Volatile.Read(ref _refused)} {Volatile.Read(ref _errors)}");
}

/// <summary>
/// One of a process's concurrent loops, until the test's stop file appears (bounded by operations, by time and by
/// errors too): pick a counter; begin a scope; read it (flow 0: the copy its long-lived session holds, checked by the
/// getter or <c>CheckAsync</c>; the other flows: by key through a new session, the entity cache's path); log the
/// version and value accepted with the time taken before the scope began; in a share of the loops add one and save on
/// the process's write path, logging the commit with the time after it returned. Every line carries the flow's id.
/// </summary>
internal sealed class Flow(int id, WorkerSettings settings, Coherence coherence, SessionFactory sessions, FaultingStore faults, HistoryWriter log, FlowTotals totals)
{
    /// <summary>Runs the loop; returns the process's exit code (0, or 3 when the runtime's store keys are not the faults').</summary>
    public async Task<int> RunAsync()
    {
        var random = new Random(unchecked(settings.Seed + (id * 7919)));
        var clock = Stopwatch.StartNew();
        Session? session = null;
        int errors = 0;
        try
        {
            for (int operations = 0;
                 operations < settings.MaxOperations && clock.Elapsed.TotalSeconds < settings.Seconds && errors < 1000 && !File.Exists(settings.StopFile);
                 operations++)
            {
                totals.Operation();
                if (session is null)
                {
                    try
                    {
                        session = await sessions.OpenAsync(id);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        errors++; // the database is restarting, say: try again shortly
                        totals.Error();
                        Log(EventKind.Error, detail: "open:" + Describe(ex));
                        await Task.Delay(random.Next(100, 300));
                        continue;
                    }

                    if (session.Counters.FirstOrDefault(c => coherence.StoreKeyOf(c.Value) != StoreTamper.KeyOf(c.Key)) is { Value: not null } stray)
                    {
                        await Console.Error.WriteLineAsync($"The runtime's store key {coherence.StoreKeyOf(stray.Value)} is not the faults' {StoreTamper.KeyOf(stray.Key)}.");
                        return 3;
                    }
                }

                bool usable = await OperateAsync(session, random);
                errors += usable ? 0 : 1;
                if (session.ShortLived || !usable)
                {
                    await session.DisposeAsync();
                    session = null;
                }
            }
        }
        finally
        {
            if (session is not null)
            {
                await session.DisposeAsync();
            }
        }

        return 0;
    }

    // One operation; false after an unexpected error: the session is then dropped (a broken connection: an
    // application would start a new one).
    private async Task<bool> OperateAsync(Session session, Random random)
    {
        int key = random.Next(1, settings.Keys + 1);
        // The last counter is read-mostly: a fault in one of its rare writes is not cut short by other writers.
        bool write = random.NextDouble() < (key == settings.Keys && key > 1 ? settings.WriteRate / 8 : settings.WriteRate);
        bool asyncCheck = random.Next(2) == 0;
        long began = Stopwatch.GetTimestamp(); // before the scope's check (or read): every commit finished before this must be seen
        Log(EventKind.Check, key, at: began);
        try
        {
            await using FreshScope scope = coherence.BeginScope();
            Counter counter = await session.ReadAsync(key);
            if (asyncCheck)
            {
                await scope.CheckAsync([counter]);
            }

            long value = counter.Value; // the getter: the (synchronous) check, unless CheckAsync or the read just did it
            long version = counter.Version;
            Log(EventKind.Read, key, version, value, at: began);
            totals.Read();
            if (!write)
            {
                return true;
            }

            await Task.Delay(random.Next(0, 3)); // the application's work between its read and its write
            counter.Value = value + 1;
            // EF Core writes every modified entity it tracks: a counter whose save was refused in an earlier scope and
            // that was not checked since still holds its refused value. The history must show those writes too.
            List<PendingCommit> bystanders = session.Bystanders(key);
            string bystanderOf = "bystander-of-" + key.ToString(CultureInfo.InvariantCulture);
            var save = new FlowSave(id, [new PendingCommit(key, version + 1, value + 1), .. bystanders]);
            faults.BeginSave(save);
            try
            {
                try
                {
                    await session.SaveAsync(scope);
                }
                catch (Exception ex) when (ex is not (StaleEntityException or SharedStoreUnavailableException or StaleSnapshotException))
                {
                    // The connection broke somewhere in the save: the database may or may not have committed it.
                    foreach (PendingCommit pending in save.Writes)
                    {
                        Log(EventKind.Maybe, pending.Key, pending.Version, pending.Value, ex.GetType().Name);
                    }

                    throw;
                }

                long committed = Stopwatch.GetTimestamp();
                Log(EventKind.Commit, key, counter.Version, counter.Value, at: committed);
                foreach (PendingCommit bystander in bystanders)
                {
                    Log(EventKind.Commit, bystander.Key, bystander.Version, bystander.Value, bystanderOf, committed);
                }
            }
            finally
            {
                faults.EndSave(id);
            }

            totals.Commit();
            return true;
        }
        catch (StaleEntityException)
        {
            totals.Conflict(); // another process committed first: nothing was written; the next scope reloads
            Log(EventKind.Conflict, key);
            return true;
        }
        catch (Exception ex) when (ex is SharedStoreUnavailableException or StaleSnapshotException)
        {
            totals.Refused(); // the store could not take the dirty token, or a reload saw less than the store announced
            Log(EventKind.Refused, key, detail: ex.GetType().Name);
            await Task.Delay(20);
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            totals.Error();
            Log(EventKind.Error, key, detail: Describe(ex));
            await Task.Delay(random.Next(100, 300));
            return false;
        }
    }

    private void Log(EventKind kind, int key = 0, long version = 0, long value = 0, string detail = "-", long at = 0) =>
        log.Write(new HistoryEvent(kind, at != 0 ? at : Stopwatch.GetTimestamp(), key, version, value, detail, id));

    private static string Describe(Exception ex)
    {
        Exception inner = ex;
        while (inner.InnerException is not null && inner is not System.Data.Common.DbException)
        {
            inner = inner.InnerException;
        }

        return $"{ex.GetType().Name}:{inner.GetType().Name}:{inner.Message.ReplaceLineEndings(" ")}";
    }
}
