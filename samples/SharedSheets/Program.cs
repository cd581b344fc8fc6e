using SharedEntities;
using SharedEntities.InMemory;
using SharedEntities.Stores;
using SharedSheets;

// Both seed stories, played by several runtimes ("processes") that share one store and one database.
// This version keeps everything in memory, in one OS process; see README.md for the commands.
var store = new InMemorySharedStore();
var database = new InMemoryEntityDatabase();
var report = new Report();
DateTime epoch = new(2026, 11, 23, 9, 0, 0, DateTimeKind.Utc);
database.Insert(new Sheet { Id = 1, Version = 1, Title = "Budget", LastModified = epoch });
database.Insert(new Sheet { Id = 2, Version = 1, Title = "Scratch", LastModified = epoch });
database.Insert(new Sheet { Id = 3, Version = 1, Title = "Counter", LastModified = epoch });

var alice = new Worker("alice", store, database, report);
var bob = new Worker("bob", store, database, report);

Console.WriteLine("1. The SQLObject story: objects in many processes see each other's writes.");
Sheet bobsBudget = bob.Find(1);
await bob.InScope(() => Console.WriteLine($"   bob reads sheet 1: \"{bobsBudget.Title}\""));
await alice.InScope(() => alice.Find(1).Title = "Budget 2027");
Console.WriteLine("   alice renames sheet 1 and commits");
await bob.InScope(() =>
{
    Console.WriteLine($"   bob's next scope reads: \"{bobsBudget.Title}\" (reloaded once: its token moved on)");
    report.ExpectFresh(bobsBudget.Title == "Budget 2027");
});

Console.WriteLine("2. Deletes are noticed.");
Sheet bobsScratch = bob.Find(2);
await alice.InScope(scope => scope.Delete(alice.Find(2)));
Console.WriteLine("   alice deletes sheet 2");
await bob.InScope(() =>
{
    try
    {
        _ = bobsScratch.Title;
        report.ExpectFresh(false);
    }
    catch (EntityDeletedException deleted)
    {
        report.DeletesNoticed++;
        Console.WriteLine($"   bob touches it: {deleted.GetType().Name}");
    }
});

Console.WriteLine("3. The Django story: a long recalculation is aborted when the sheet changes meanwhile.");
await using (FreshScope recalc = bob.Coherence.BeginScope())
{
    DateTime started = bobsBudget.LastModified;
    bobsBudget.Recalculations++;
    Console.WriteLine("   bob starts recalculating sheet 1 ...");
    await alice.InScope(() =>
    {
        Sheet sheet = alice.Find(1);
        sheet.Title = "Budget 2027 (edited)";
        sheet.LastModified = started.AddMinutes(5);
    });
    Console.WriteLine("   ... alice edits a cell and commits ...");
    try
    {
        await recalc.CommitAsync();
        report.LostUpdates++; // the recalculation overwrote alice's edit
    }
    catch (StaleEntityException)
    {
        report.RecalcsAborted++;
        Console.WriteLine("   ... bob's commit is refused: recalc aborted, alice's edit is kept");
    }
}

Console.WriteLine("4. A contended counter: four processes, 100 increments each, no lost update.");
Worker[] workers = [.. Enumerable.Range(1, 4).Select(i => new Worker($"p{i}", store, database, report))];
await Task.WhenAll(workers.Select(worker => Task.Run(async () =>
{
    Sheet counter = worker.Find(3);
    for (int i = 0; i < 100; i++)
    {
        await worker.Coherence.RunInScopeAsync(
            async (_, _) =>
            {
                long seen = counter.Recalculations;
                await Task.Yield();
                counter.Recalculations = seen + 1;
            },
            maxAttempts: 1_000);
        Interlocked.Increment(ref report.Commits);
    }
})));
long final = (long)database.ValueOf("Sheet", 3, 2)!;
report.LostUpdates += 400 - final;
Console.WriteLine($"   final count: {final} of 400");

report.Processes = 2 + workers.Length;
Console.WriteLine(report.Summary());
return report.Violations == 0 ? 0 : 1;

/// <summary>One "process": its own runtime and database connection.</summary>
internal sealed class Worker(string name, ISharedStore store, InMemoryEntityDatabase database, Report report)
{
    private InMemoryEntityConnection? _connection;

    public string Name { get; } = name;

    public Coherence Coherence { get; } = new(store);

    private InMemoryEntityConnection Connection => _connection ??= database.Connect(Coherence);

    public Sheet Find(int id) => Connection.Find<Sheet>(id) ?? throw new InvalidOperationException($"{Name}: no sheet {id}");

    public Task InScope(Action body) => InScope(_ => body());

    public async Task InScope(Action<FreshScope> body)
    {
        await Coherence.RunInScopeAsync((scope, _) =>
        {
            body(scope);
            return Task.CompletedTask;
        });
        Interlocked.Increment(ref report.Commits);
    }
}

/// <summary>What the run showed; any violation makes the exit code non-zero.</summary>
internal sealed class Report
{
    public int Processes;
    public long Commits;
    public long LostUpdates;
    public int StaleAccepted;
    public int RecalcsAborted;
    public int DeletesNoticed;

    public int Violations => (LostUpdates != 0 ? 1 : 0) + StaleAccepted;

    /// <summary>Counts a read that returned something older than the latest commit.</summary>
    public void ExpectFresh(bool isFresh)
    {
        if (!isFresh)
        {
            StaleAccepted++;
        }
    }

    public string Summary() =>
        $"summary: processes={Processes} commits={Commits} lost_updates={LostUpdates} stale_accepted={StaleAccepted} " +
        $"recalcs_aborted={RecalcsAborted} deletes_noticed={DeletesNoticed}";
}
