using SharedEntities.InMemory;
using SharedEntities.Stores;

namespace SharedEntities.Tests;

/// <summary>One shared store and one database, with any number of "processes" (runtimes) on them.</summary>
internal sealed class World
{
    public World(TimeProvider? time = null) => Store = new InMemorySharedStore(time);

    public InMemoryEntityDatabase Database { get; } = new();

    public InMemorySharedStore Store { get; }

    public Process NewProcess(CoherenceOptions? options = null, SharedEntitiesMetrics? metrics = null) => new(this, options, metrics);

    public Sheet InsertSheet(int id, string title, long version = 1)
    {
        var sheet = new Sheet { Id = id, Version = version, Title = title, LastModified = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc) };
        Database.Insert(sheet);
        return sheet;
    }

    /// <summary>A world with sheet 1 ("Q1", version 1) and two processes; the second has loaded the sheet.</summary>
    public static (World World, Process A, Process B, Sheet InB) TwoProcessesSharingSheet1()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        Process b = world.NewProcess();
        return (world, world.NewProcess(), b, b.Sheet(1));
    }

    public string? TitleInDatabase(int id) => (string?)Database.ValueOf("Sheet", id, 0);
}

/// <summary>One "process": its own runtime and its own database connection, sharing the world's store.</summary>
internal sealed class Process
{
    public Process(World world, CoherenceOptions? options, SharedEntitiesMetrics? metrics, Microsoft.Extensions.Logging.ILoggerFactory? loggers = null)
    {
        Coherence = new Coherence(world.Store, options, loggers, metrics);
        Db = world.Database.Connect(Coherence);
    }

    public Coherence Coherence { get; }

    public InMemoryEntityConnection Db { get; }

    public Sheet Sheet(int id) => Db.Find<Sheet>(id) ?? throw new InvalidOperationException($"No sheet {id}.");

    /// <summary>Runs <paramref name="body"/> in a new scope of this process and commits it.</summary>
    public Task CommitAsync(Action<FreshScope> body) =>
        Coherence.RunInScopeAsync((scope, _) =>
        {
            body(scope);
            return Task.CompletedTask;
        });

    /// <summary>Reads a shared property of <paramref name="sheet"/> in a scope of its own (checking it, filling its token).</summary>
    public async Task ReadInScopeAsync(Sheet sheet)
    {
        await using FreshScope scope = Coherence.BeginScope();
        _ = sheet.Title;
    }

    /// <summary>Loads sheet <paramref name="id"/> in a new scope, renames it and commits.</summary>
    public Task RenameAsync(int id, string title) => CommitAsync(_ => Sheet(id).Title = title);
}

internal static class EntityTestExtensions
{
    /// <summary>Writes a shared value the way a loader does: no write recorded.</summary>
    public static void SetSharedValueForTest(this ISharedEntity entity, int index, object? value) => entity.SetSharedValue(index, value);
}
