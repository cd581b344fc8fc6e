using System.Diagnostics;
using System.Globalization;
using SharedEntities;
using SharedEntities.FaultHistory;
using SharedEntities.Memcached;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

// One process of a fault-history run (see docs/fault-history.md). Its settings come from FAULT_* variables
// (WorkerSettings). It runs FAULT_FLOWS concurrent flows (Flow) on one Coherence, so one entity cache: flow 0 holds
// counters 1…N for its whole life, the others read by key through a new session per operation. Each loops until the
// test's stop file appears, reading and writing counters and logging what it accepted and committed. Faults at the
// write's dangerous points come from FaultingStore. Prints "<operations> <reads> <commits> <conflicts> <refused>
// <errors>" at the end.
WorkerSettings settings = WorkerSettings.FromEnvironment();
using var log = new HistoryWriter(settings.Log);
log.Write(new HistoryEvent(EventKind.Start, Stopwatch.GetTimestamp(),
    Detail: $"worker={settings.Worker},generation={settings.Generation},path={settings.Path},flows={settings.Flows},pid={Environment.ProcessId},kill={settings.KillPoint?.ToString() ?? "none"}"));

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

var sessions = new SessionFactory(settings, coherence);
var totals = new FlowTotals();
int[] exits = await Task.WhenAll(Enumerable.Range(0, settings.Flows)
    .Select(flow => Task.Run(() => new Flow(flow, settings, coherence, sessions, faults, log, totals).RunAsync())));

(store as IDisposable)?.Dispose();
log.Write(new HistoryEvent(EventKind.End, Stopwatch.GetTimestamp(), Detail: "totals=" + totals.ToString().Replace(' ', ',')));
Console.WriteLine(totals.ToString());
return exits.FirstOrDefault(code => code != 0);
