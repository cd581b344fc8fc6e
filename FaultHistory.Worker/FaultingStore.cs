using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using SharedEntities.Stores;

namespace SharedEntities.FaultHistory;

/// <summary>A write a worker is committing: a killed process logs it when it dies after the commit.</summary>
internal sealed record PendingCommit(int Key, long Version, long Value);

/// <summary>The save a flow is making: its counter's write first, then the bystanders' (EF Core writes them along).</summary>
internal sealed record FlowSave(int Flow, IReadOnlyList<PendingCommit> Writes);

/// <summary>Deletes one key from the run's store, behind the runtime's back.</summary>
internal interface IKeyEvictor
{
    /// <summary>Returns <c>ok</c>, <c>deferred</c> (it will happen once a lock this process holds is released) or <c>failed</c>.</summary>
    string Evict(string key);

    /// <summary>What the store holds under the key now.</summary>
    Presence Probe(string key);
}

/// <summary>What a store holds under a key.</summary>
internal enum Presence
{
    Missing,

    /// <summary>A lease placeholder: another process won the lease and is filling.</summary>
    Placeholder,

    Value,
}

/// <summary>
/// The store in front of the real one that injects this process's faults at the dangerous points of a write: a batch
/// with <see cref="StoreOperationKind.Raise"/> operations is the dirty raise, one with
/// <see cref="StoreOperationKind.Publish"/> operations is the publish (the database commit has happened). At each
/// point it may evict the batch's keys, stall past <c>DirtyTokenTtl</c>, or kill its own process, within the budgets
/// of <see cref="WorkerSettings"/>; every fault is logged before it acts. The process's flows save concurrently: each
/// save is the calling flow's (an async-local value), and a kill logs every flow's save in flight.
/// </summary>
internal sealed class FaultingStore(ISharedStore inner, WorkerSettings settings, IKeyEvictor evictor, HistoryWriter log, Func<string, int> keyId)
    : ISharedStore
{
    private readonly Random _random = new(settings.Seed);
    private Stopwatch? _sinceFirstWrite;
    // Budgets per point, for the hot counters and for the read-mostly one (the last): a stale token of a counter that
    // is rarely written survives until the next write, so its few writes get faults far more often.
    private readonly int[] _evicts = new int[Enum.GetValues<FaultPoint>().Length * 2];
    private readonly Lock _lock = new();
    private int _stalls;

    // The save of the flow calling the store (the raise and the publish run in the flow's own async context), and every
    // flow's save in flight.
    private readonly AsyncLocal<FlowSave?> _current = new();
    private readonly ConcurrentDictionary<int, FlowSave> _saving = new();

    /// <summary>Called by a flow before it saves (synchronously, so that the async-local value stays with the flow).</summary>
    public void BeginSave(FlowSave save)
    {
        _current.Value = save;
        _saving[save.Flow] = save;
    }

    /// <summary>Called by the flow once it has logged what became of its save.</summary>
    public void EndSave(int flow)
    {
        _saving.TryRemove(flow, out _);
        _current.Value = null;
    }

    public void Execute(StoreBatch batch)
    {
        Wait(Before(batch));
        inner.Execute(batch);
        Wait(After(batch));

        static void Wait(TimeSpan delay)
        {
            if (delay > TimeSpan.Zero)
            {
                Thread.Sleep(delay);
            }
        }
    }

    public async ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default)
    {
        await Wait(Before(batch));
        await inner.ExecuteAsync(batch, cancellationToken);
        await Wait(After(batch));

        // Not cancellable: a stall is a process that stopped running, not a caller that gave up.
        static Task Wait(TimeSpan delay) => delay > TimeSpan.Zero ? Task.Delay(delay, CancellationToken.None) : Task.CompletedTask;
    }

    private TimeSpan Before(StoreBatch batch)
    {
        if (Has(batch, StoreOperationKind.Raise))
        {
            _sinceFirstWrite ??= Stopwatch.StartNew(); // the kill's delay counts from here: starting up is not running
            return Inject(FaultPoint.BeforeRaise, batch);
        }

        return Has(batch, StoreOperationKind.Publish) ? Inject(FaultPoint.BeforePublish, batch) : TimeSpan.Zero;
    }

    private TimeSpan After(StoreBatch batch) => Has(batch, StoreOperationKind.Raise) ? Inject(FaultPoint.AfterRaise, batch) : TimeSpan.Zero;

    private static bool Has(StoreBatch batch, StoreOperationKind kind) => batch.Operations.Any(o => o.Kind == kind);

    /// <summary>Injects the fault due at <paramref name="point"/>, if any; returns how long the caller must then stall.</summary>
    private TimeSpan Inject(FaultPoint point, StoreBatch batch)
    {
        string[] keys = [.. batch.Operations.Where(o => o.Kind is StoreOperationKind.Raise or StoreOperationKind.Publish).Select(o => o.Key).Distinct()];
        int key = keys.Length > 0 ? keyId(keys[0]) : 0;
        FaultAction? action = Decide(point, readMostly: settings.Keys > 1 && key == settings.Keys);
        if (action is null)
        {
            return TimeSpan.Zero;
        }

        string kind = FaultKinds.Of(action.Value, point);
        FlowSave? save = _current.Value;
        int flow = save?.Flow ?? 0;
        switch (action.Value)
        {
            case FaultAction.Kill:
                // The kill is the history's last line (the test tells a process that killed itself by it).
                log.WriteLast(
                    [.. SavesInFlight(save, point, keys), new HistoryEvent(EventKind.Fault, Stopwatch.GetTimestamp(), key, Detail: kind, Flow: flow)],
                    () => Process.GetCurrentProcess().Kill()); // SIGKILL: no finally blocks, no disposal, no publish
                return TimeSpan.Zero;

            case FaultAction.Stall:
                log.Write(new HistoryEvent(EventKind.Fault, Stopwatch.GetTimestamp(), key, Detail: kind, Flow: flow));
                return TimeSpan.FromMilliseconds(settings.DirtyTokenTtlMs + 600);

            default:
                string outcome = string.Join('+', keys.Select(evictor.Evict).Distinct());
                log.Write(new HistoryEvent(EventKind.Fault, Stopwatch.GetTimestamp(), key, Detail: $"{kind}:{(outcome.Length == 0 ? "failed" : outcome)}", Flow: flow));
                if (outcome == "ok" && point == FaultPoint.AfterRaise)
                {
                    HoldUntilRefilled(keys);
                }

                return TimeSpan.Zero;
        }
    }

    // Before a kill, as the flows would have logged them: the killing flow's save, once past its commit (before the
    // publish), as commits with the time after it; every other flow's save in flight as indeterminate (it dies anywhere
    // in its save, perhaps after its commit).
    private List<HistoryEvent> SavesInFlight(FlowSave? save, FaultPoint point, string[] keys)
    {
        long at = Stopwatch.GetTimestamp();
        var lines = new List<HistoryEvent>();
        if (point == FaultPoint.BeforePublish && save is { Writes: [var first, ..] })
        {
            foreach (PendingCommit write in save.Writes)
            {
                bool ours = keys.Select(keyId).Contains(write.Key);
                lines.Add(new HistoryEvent(ours ? EventKind.Commit : EventKind.Error, at, write.Key, write.Version, write.Value,
                    !ours ? "the publish is not of the pending commit" : write == first ? "-" : "bystander-of-" + first.Key.ToString(CultureInfo.InvariantCulture),
                    save.Flow));
            }
        }

        foreach (FlowSave other in _saving.Values.Where(s => !ReferenceEquals(s, save)))
        {
            lines.AddRange(other.Writes.Select(write => new HistoryEvent(EventKind.Maybe, at, write.Key, write.Version, write.Value, "killed-with-the-process", other.Flow)));
        }

        return lines;
    }

    // Right after the dirty raise, the writer pauses after the eviction until another process has acted on the miss:
    // until the key holds a value (a lease fill, another writer's raise), or a lease placeholder has stood for 50 ms
    // (its filler may be waiting for this writer's row lock), for a second at most. A pause of any length there is
    // one the protocol must survive; this one makes sure the window is used.
    private void HoldUntilRefilled(string[] keys)
    {
        var held = Stopwatch.StartNew();
        long placeholderSince = -1;
        while (held.ElapsedMilliseconds < 1000)
        {
            Presence[] now = [.. keys.Select(evictor.Probe)];
            if (now.All(p => p == Presence.Value))
            {
                return;
            }

            if (now.Contains(Presence.Placeholder))
            {
                placeholderSince = placeholderSince < 0 ? held.ElapsedMilliseconds : placeholderSince;
                if (held.ElapsedMilliseconds - placeholderSince >= 50)
                {
                    return;
                }
            }

            Thread.Sleep(2);
        }
    }

    private FaultAction? Decide(FaultPoint point, bool readMostly)
    {
        lock (_lock)
        {
            // Every run must show each kind of fault: a process's first stall comes at the first chance, and its kill
            // (which ends it) only once that stall has happened.
            if (settings.KillPoint == point && _sinceFirstWrite?.Elapsed.TotalSeconds >= settings.KillAfterSeconds && (_stalls > 0 || settings.Stalls == 0))
            {
                return FaultAction.Kill;
            }

            if (_stalls == 0 && settings.Stalls > 0 && point == settings.StallPoint)
            {
                _stalls++;
                return FaultAction.Stall;
            }

            if (_random.NextDouble() >= (readMostly ? 0.5 : settings.FaultRate))
            {
                return null;
            }

            if (_stalls < settings.Stalls && point == settings.StallPoint)
            {
                _stalls++;
                return FaultAction.Stall;
            }

            int budget = (int)point + (readMostly ? Enum.GetValues<FaultPoint>().Length : 0);
            if (_evicts[budget] < settings.EvictsPerPoint)
            {
                _evicts[budget]++;
                return FaultAction.Evict;
            }

            return null;
        }
    }
}

/// <summary>Evicts from the run's memcached with <c>md</c>; a hung or dead server makes it fail (quickly).</summary>
internal sealed class MemcachedEvictor(int port) : IKeyEvictor
{
    public string Evict(string key)
    {
        try
        {
            StoreTamper.MemcachedDelete(port, key, TimeSpan.FromMilliseconds(500));
            return "ok";
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            return "failed";
        }
    }

    public Presence Probe(string key)
    {
        try
        {
            return StoreTamper.MemcachedValue(port, key, TimeSpan.FromMilliseconds(500)) switch
            {
                null => Presence.Missing,
                "" => Presence.Placeholder,
                _ => Presence.Value,
            };
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
        {
            return Presence.Value; // a hung or dead server: nothing to wait for
        }
    }
}

/// <summary>
/// Evicts from the embedded store's table. When this process holds the file's write lock (its raise is enlisted in
/// its own transaction) the deletion cannot run until that transaction ends: it is left running in the background,
/// and happens right after the commit.
/// </summary>
internal sealed class SqliteEvictor(string file, HistoryWriter log) : IKeyEvictor
{
    public string Evict(string key)
    {
        var deletion = Task.Run(() => StoreTamper.SqliteDelete(file, [key], TimeSpan.FromSeconds(30))); // the workers' busy timeout
        try
        {
            if (deletion.Wait(TimeSpan.FromMilliseconds(250)))
            {
                return "ok";
            }
        }
        catch (AggregateException)
        {
            return "failed";
        }

        // Never waited for: the deletion happens after this process's commit.
        deletion.ContinueWith(
            t => log.Write(new HistoryEvent(EventKind.Error, Stopwatch.GetTimestamp(), Detail: "deferred eviction failed: " + t.Exception!.InnerException!.Message)),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
        return "deferred";
    }

    public Presence Probe(string key) => StoreTamper.SqliteValue(file, key, TimeSpan.FromSeconds(1)) switch
    {
        null => Presence.Missing,
        (_, true) => Presence.Placeholder,
        _ => Presence.Value,
    };
}
