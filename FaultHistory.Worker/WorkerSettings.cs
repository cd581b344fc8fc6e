using System.Globalization;

namespace SharedEntities.FaultHistory;

// Linked into FaultHistory.Tests, which starts the workers with these settings in their environment.

/// <summary>The write paths of the library a worker can use.</summary>
internal static class WritePaths
{
    /// <summary><c>DbEntityLoader</c> and <c>FreshScope.CommitAsync</c>.</summary>
    public const string AdoNet = "adonet";

    /// <summary>EF Core <c>SaveChanges</c> with no application transaction.</summary>
    public const string EfAutocommit = "ef-autocommit";

    /// <summary>EF Core <c>BeginTransaction</c>, <c>SaveChanges</c>, <c>Commit</c>.</summary>
    public const string EfTransaction = "ef-transaction";

    public static IReadOnlyList<string> All { get; } = [AdoNet, EfAutocommit, EfTransaction];
}

/// <summary>The dangerous points of a write, as a store decorator sees them.</summary>
internal enum FaultPoint
{
    /// <summary>A batch of raises (the dirty tokens) is about to go to the store.</summary>
    BeforeRaise,

    /// <summary>The dirty raise has just returned.</summary>
    AfterRaise,

    /// <summary>A batch of publishes is about to go: the database commit has happened.</summary>
    BeforePublish,
}

/// <summary>What a worker does to itself at a dangerous point.</summary>
internal enum FaultAction
{
    /// <summary>Delete the batch's keys from the store (and pause briefly, so that others can act on the miss).</summary>
    Evict,

    /// <summary>Sleep longer than <c>DirtyTokenTtl</c>: a dirty token raised before expires.</summary>
    Stall,

    /// <summary>SIGKILL itself.</summary>
    Kill,
}

/// <summary>Names of the fault kinds as the histories record them.</summary>
internal static class FaultKinds
{
    public static string Of(FaultAction action, FaultPoint point) => $"{Words(action.ToString())}-{Name(point)}";

    /// <summary><c>before-raise</c>, <c>after-raise</c>, <c>before-publish</c>.</summary>
    public static string Name(FaultPoint point) => Words(point.ToString());

    /// <summary>Every fault a worker injects: <c>evict-before-raise</c> … <c>kill-before-publish</c>.</summary>
    public static IReadOnlyList<string> Internal { get; } =
        [.. from action in Enum.GetValues<FaultAction>() from point in Enum.GetValues<FaultPoint>() select Of(action, point)];

    public static FaultPoint? ParsePoint(string text) =>
        Enum.GetValues<FaultPoint>().Where(p => Name(p) == text).Select(p => (FaultPoint?)p).FirstOrDefault();

    // AfterRaise → after-raise
    private static string Words(string pascal) =>
        string.Concat(pascal.Select((c, i) => char.IsUpper(c) && i > 0 ? "-" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}

/// <summary>One worker process's settings, passed in its environment (<c>FAULT_*</c>).</summary>
internal sealed record WorkerSettings
{
    public required int Worker { get; init; }

    /// <summary>How many processes ran in this worker's slot before (a killed worker is replaced by the next generation).</summary>
    public required int Generation { get; init; }

    /// <summary>One of <see cref="WritePaths"/>.</summary>
    public required string Path { get; init; }

    /// <summary><c>postgres:&lt;connection string&gt;</c> or <c>sqlite:&lt;file&gt;</c>.</summary>
    public required string Database { get; init; }

    /// <summary><c>memcached:&lt;port&gt;</c> (on 127.0.0.1) or <c>embedded</c> (the SQLite file's token table).</summary>
    public required string Store { get; init; }

    public required string Log { get; init; }

    /// <summary>The run ends when this file appears (the test creates it).</summary>
    public required string StopFile { get; init; }

    /// <summary>The process's own bound in time, should the stop file never come.</summary>
    public required double Seconds { get; init; }

    /// <summary>The run's bound in operations (reads and read-modify-writes) for this process.</summary>
    public required int MaxOperations { get; init; }

    /// <summary>Counters 1…Keys.</summary>
    public required int Keys { get; init; }

    public required int Seed { get; init; }

    /// <summary>
    /// Concurrent flows in the process, sharing its <c>Coherence</c> (and so its entity cache): flow 0 keeps a
    /// long-lived session, the others open a short-lived one per operation and read by key.
    /// </summary>
    public int Flows { get; init; } = 4;

    /// <summary>The share of operations that are read-modify-writes (an eighth of it for the last, read-mostly, counter); the others are plain reads.</summary>
    public double WriteRate { get; init; } = 0.4;

    /// <summary>The chance of an evict or stall at each dangerous point, while the budgets last (one half for the read-mostly counter).</summary>
    public double FaultRate { get; init; } = 0.06;

    /// <summary>Evictions per dangerous point and process, for the hot counters and again for the read-mostly one.</summary>
    public int EvictsPerPoint { get; init; } = 4;

    /// <summary>The point at which this process stalls (past <c>DirtyTokenTtl</c>), if any.</summary>
    public FaultPoint? StallPoint { get; init; }

    /// <summary>How many times it stalls there.</summary>
    public int Stalls { get; init; } = 1;

    /// <summary>The point at which this process kills itself, if any.</summary>
    public FaultPoint? KillPoint { get; init; }

    /// <summary>It kills itself at the first <see cref="KillPoint"/> this many seconds after its first write.</summary>
    public double KillAfterSeconds { get; init; } = 3;

    public int DirtyTokenTtlMs { get; init; } = 1000;

    public IReadOnlyDictionary<string, string> ToEnvironment() => new Dictionary<string, string>
    {
        ["FAULT_WORKER"] = Text(Worker),
        ["FAULT_GENERATION"] = Text(Generation),
        ["FAULT_PATH"] = Path,
        ["FAULT_DATABASE"] = Database,
        ["FAULT_STORE"] = Store,
        ["FAULT_LOG"] = Log,
        ["FAULT_STOP_FILE"] = StopFile,
        ["FAULT_SECONDS"] = Text(Seconds),
        ["FAULT_MAX_OPERATIONS"] = Text(MaxOperations),
        ["FAULT_KEYS"] = Text(Keys),
        ["FAULT_SEED"] = Text(Seed),
        ["FAULT_FLOWS"] = Text(Flows),
        ["FAULT_WRITE_RATE"] = Text(WriteRate),
        ["FAULT_RATE"] = Text(FaultRate),
        ["FAULT_EVICTS_PER_POINT"] = Text(EvictsPerPoint),
        ["FAULT_STALL_POINT"] = StallPoint is { } stall ? FaultKinds.Name(stall) : "none",
        ["FAULT_STALLS"] = Text(Stalls),
        ["FAULT_KILL_POINT"] = KillPoint is { } point ? FaultKinds.Name(point) : "none",
        ["FAULT_KILL_AFTER_SECONDS"] = Text(KillAfterSeconds),
        ["FAULT_DIRTY_TOKEN_TTL_MS"] = Text(DirtyTokenTtlMs),
    };

    public static WorkerSettings FromEnvironment()
    {
        static string Get(string name) => Environment.GetEnvironmentVariable(name) ?? throw new InvalidOperationException($"{name} is not set.");
        static int Int(string name) => int.Parse(Get(name), CultureInfo.InvariantCulture);
        static double Real(string name) => double.Parse(Get(name), CultureInfo.InvariantCulture);
        return new WorkerSettings
        {
            Worker = Int("FAULT_WORKER"),
            Generation = Int("FAULT_GENERATION"),
            Path = Get("FAULT_PATH"),
            Database = Get("FAULT_DATABASE"),
            Store = Get("FAULT_STORE"),
            Log = Get("FAULT_LOG"),
            StopFile = Get("FAULT_STOP_FILE"),
            Seconds = Real("FAULT_SECONDS"),
            MaxOperations = Int("FAULT_MAX_OPERATIONS"),
            Keys = Int("FAULT_KEYS"),
            Seed = Int("FAULT_SEED"),
            Flows = Int("FAULT_FLOWS"),
            WriteRate = Real("FAULT_WRITE_RATE"),
            FaultRate = Real("FAULT_RATE"),
            EvictsPerPoint = Int("FAULT_EVICTS_PER_POINT"),
            StallPoint = FaultKinds.ParsePoint(Get("FAULT_STALL_POINT")),
            Stalls = Int("FAULT_STALLS"),
            KillPoint = FaultKinds.ParsePoint(Get("FAULT_KILL_POINT")),
            KillAfterSeconds = Real("FAULT_KILL_AFTER_SECONDS"),
            DirtyTokenTtlMs = Int("FAULT_DIRTY_TOKEN_TTL_MS"),
        };
    }

    private static string Text(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);
}
