using System.Diagnostics;
using System.Globalization;
using SharedEntities;
using SharedEntities.FaultHistory;
using SharedEntities.Memcached;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

// One process of a fault-history run (see docs/fault-history.md). Its settings come from FAULT_* variables
// (WorkerSettings). It holds counters 1…N for its whole life and loops until the test's stop file appears (bounded by
// operations and by time too): pick a counter; begin a scope; check it (the getter, or CheckAsync); log the version and
// value accepted with the time taken before the check; in a share of the loops add one and save on its write path,
// logging the commit with the time after it returned. Faults at the write's dangerous points come from FaultingStore.
// Prints "<operations> <reads> <commits> <conflicts> <refused> <errors>" at the end.
WorkerSettings settings = WorkerSettings.FromEnvironment();
using var log = new HistoryWriter(settings.Log);
log.Write(new HistoryEvent(EventKind.Start, Stopwatch.GetTimestamp(),
    Detail: $"worker={settings.Worker},generation={settings.Generation},path={settings.Path},pid={Environment.ProcessId},kill={settings.KillPoint?.ToString() ?? "none"}"));

ISharedStore store;
IKeyEvictor evictor;
if (settings.Store.StartsWith("memcached:", StringComparison.Ordinal))
{
    int port = int.Parse(settings.Store["memcached:".Length..], CultureInfo.InvariantCulture);
    store = new MemcachedStore(new MemcachedClientOptions { Servers = $"127.0.0.1:{port}", CircuitBreakerCooldown = TimeSpan.FromMilliseconds(200) });
    evictor = new MemcachedEvictor(port);
}
else
{
    string file = settings.Database["sqlite:".Length..];
    store = new SqliteSharedStore($"Data Source={file}", busyTimeout: TimeSpan.FromSeconds(30));
    evictor = new SqliteEvictor(file, log);
}

Dictionary<string, int> ids = Enumerable.Range(1, settings.Keys).ToDictionary(StoreTamper.KeyOf);
var faults = new FaultingStore(store, settings, evictor, log, key => ids.GetValueOrDefault(key));
var options = new CoherenceOptions
{
    DirtyTokenTtl = TimeSpan.FromMilliseconds(settings.DirtyTokenTtlMs), // short: a stall or a dead writer lets it expire
    LeaseTtl = TimeSpan.FromSeconds(2),                                   // a filler killed mid-fill blocks others 2 s at most
};
using var coherence = new Coherence(faults, options);

var random = new Random(settings.Seed);
var clock = Stopwatch.StartNew();
Session? session = null;
int operations = 0, reads = 0, commits = 0, conflicts = 0, refused = 0, errors = 0;
for (; operations < settings.MaxOperations && clock.Elapsed.TotalSeconds < settings.Seconds && errors < 1000 && !File.Exists(settings.StopFile); operations++)
{
    if (session is null)
    {
        try
        {
            session = await Session.OpenAsync(settings, coherence);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            errors++; // the database is restarting, say: try again shortly
            log.Write(new HistoryEvent(EventKind.Error, Stopwatch.GetTimestamp(), Detail: "open:" + Describe(ex)));
            await Task.Delay(random.Next(100, 300));
            continue;
        }

        if (session.Counters.FirstOrDefault(c => coherence.StoreKeyOf(c.Value) != StoreTamper.KeyOf(c.Key)) is { Value: not null } stray)
        {
            await Console.Error.WriteLineAsync($"The runtime's store key {coherence.StoreKeyOf(stray.Value)} is not the faults' {StoreTamper.KeyOf(stray.Key)}.");
            return 3;
        }
    }

    int key = random.Next(1, settings.Keys + 1);
    // The last counter is read-mostly: a fault in one of its rare writes is not cut short by other writers.
    bool write = random.NextDouble() < (key == settings.Keys && key > 1 ? settings.WriteRate / 8 : settings.WriteRate);
    bool asyncCheck = random.Next(2) == 0;
    Counter counter = session.Counters[key];
    long began = Stopwatch.GetTimestamp(); // before the scope's check: every commit finished before this must be seen
    log.Write(new HistoryEvent(EventKind.Check, began, key));
    try
    {
        await using FreshScope scope = coherence.BeginScope();
        if (asyncCheck)
        {
            await scope.CheckAsync([counter]);
        }

        long value = counter.Value; // the getter: the (synchronous) check, unless CheckAsync just did it
        long version = counter.Version;
        log.Write(new HistoryEvent(EventKind.Read, began, key, version, value));
        reads++;
        if (!write)
        {
            continue;
        }

        await Task.Delay(random.Next(0, 3)); // the application's work between its read and its write
        counter.Value = value + 1;
        // EF Core writes every modified entity it tracks: a counter whose save was refused in an earlier scope and
        // that was not checked since still holds its refused value. The history must show those writes too.
        List<PendingCommit> bystanders = session is EfSession ef ? ef.Bystanders(key) : [];
        string bystanderOf = "bystander-of-" + key.ToString(CultureInfo.InvariantCulture);
        faults.Pending = [new PendingCommit(key, version + 1, value + 1), .. bystanders];
        try
        {
            await session.SaveAsync(scope);
        }
        catch (Exception ex) when (ex is not (StaleEntityException or SharedStoreUnavailableException or StaleSnapshotException))
        {
            // The connection broke somewhere in the save: the database may or may not have committed it.
            foreach (PendingCommit pending in faults.Pending)
            {
                log.Write(new HistoryEvent(EventKind.Maybe, Stopwatch.GetTimestamp(), pending.Key, pending.Version, pending.Value, ex.GetType().Name));
            }

            throw;
        }
        finally
        {
            faults.Pending = null;
        }

        long committed = Stopwatch.GetTimestamp();
        log.Write(new HistoryEvent(EventKind.Commit, committed, key, counter.Version, counter.Value));
        foreach (PendingCommit bystander in bystanders)
        {
            log.Write(new HistoryEvent(EventKind.Commit, committed, bystander.Key, bystander.Version, bystander.Value, bystanderOf));
        }

        commits++;
    }
    catch (StaleEntityException)
    {
        conflicts++; // another process committed first: nothing was written; the next scope reloads
        log.Write(new HistoryEvent(EventKind.Conflict, Stopwatch.GetTimestamp(), key));
    }
    catch (Exception ex) when (ex is SharedStoreUnavailableException or StaleSnapshotException)
    {
        refused++; // the store could not take the dirty token, or a reload saw less than the store announced
        log.Write(new HistoryEvent(EventKind.Refused, Stopwatch.GetTimestamp(), key, Detail: ex.GetType().Name));
        await Task.Delay(20);
    }
    catch (Exception ex) when (ex is not OutOfMemoryException)
    {
        errors++;
        log.Write(new HistoryEvent(EventKind.Error, Stopwatch.GetTimestamp(), key, Detail: Describe(ex)));
        await session.DisposeAsync(); // a broken connection: start a new session, as an application would
        session = null;
        await Task.Delay(random.Next(100, 300));
    }
}

if (session is not null)
{
    await session.DisposeAsync();
}

(store as IDisposable)?.Dispose();
log.Write(new HistoryEvent(EventKind.End, Stopwatch.GetTimestamp(), Detail: $"operations={operations},reads={reads},commits={commits}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{operations} {reads} {commits} {conflicts} {refused} {errors}"));
return 0;

static string Describe(Exception ex)
{
    Exception inner = ex;
    while (inner.InnerException is not null && inner is not System.Data.Common.DbException)
    {
        inner = inner.InnerException;
    }

    return $"{ex.GetType().Name}:{inner.GetType().Name}:{inner.Message.ReplaceLineEndings(" ")}";
}
