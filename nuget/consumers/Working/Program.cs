using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SharedEntities;
using SharedEntities.EntityFrameworkCore;
using Working;

// Two "processes" (two service providers, each with its own Coherence) share one SQLite file and its embedded store:
// a rename committed by the first is seen by the second's next scope, through the generated accessors.
string folder = Directory.CreateTempSubdirectory("sharedentities-consumer-").FullName;
string connectionString = $"Data Source={Path.Combine(folder, "sheets.db")}";
int failures = 0;
try
{
    using ServiceProvider first = Process(connectionString);
    using ServiceProvider second = Process(connectionString);

    using (IServiceScope scope = first.CreateScope())
    {
        var db = scope.ServiceProvider.GetRequiredService<SheetsContext>();
        await db.Database.EnsureCreatedAsync();
        await using FreshScope fresh = first.GetRequiredService<Coherence>().BeginScope();
        db.Sheets.Add(new Sheet { Id = 1, Title = "Q2", Total = 10m });
        await db.SaveChangesSharedAsync();
    }

    // The second process keeps its context (and so its entity) for the rest of the run.
    using IServiceScope secondScope = second.CreateScope();
    var secondDb = secondScope.ServiceProvider.GetRequiredService<SheetsContext>();
    Sheet seenBySecond = await ReadAsync(second.GetRequiredService<Coherence>(), secondDb, "second process, first read", "Q2");

    Coherence writer = first.GetRequiredService<Coherence>();
    using (IServiceScope scope = first.CreateScope())
    {
        var db = scope.ServiceProvider.GetRequiredService<SheetsContext>();
        await using FreshScope fresh = writer.BeginScope();
        Sheet sheet = await db.Sheets.SingleAsync(s => s.Id == 1);
        sheet.Title = "Q3";
        sheet.Total += 5m;
        await db.SaveChangesSharedAsync(); // version-guarded UPDATE, dirty token, COMMIT, publish
        Console.WriteLine($"first process: renamed to {sheet.Title}, version {sheet.Version}");
    }

    // The second process still holds its old object: its next scope sees the rename.
    await using (second.GetRequiredService<Coherence>().BeginScope())
    {
        Console.WriteLine($"second process, next scope: {seenBySecond.Title}, total {seenBySecond.Total}, version {seenBySecond.Version}");
        Check(seenBySecond.Title == "Q3", $"after the rename the second process reads \"{seenBySecond.Title}\", expected \"Q3\"");
        Check(seenBySecond.Total == 15m, $"after the rename the second process reads the total {seenBySecond.Total}, expected 15");
    }

    Console.WriteLine(failures == 0 ? "consumer: ok" : $"consumer: {failures} check(s) failed");
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(folder, recursive: true);
}

return failures == 0 ? 0 : 1;

static ServiceProvider Process(string connectionString)
{
    var services = new ServiceCollection();
    services.AddSharedEntities(o => o.OutsideScopeReads = OutsideScopeReads.Throw).UseSqlite(connectionString);
    services.AddDbContext<SheetsContext>((provider, options) => options.UseSqlite(connectionString).UseSharedEntities(provider));
    return services.BuildServiceProvider(validateScopes: true);
}

async Task<Sheet> ReadAsync(Coherence coherence, SheetsContext db, string who, string expectedTitle)
{
    await using FreshScope fresh = coherence.BeginScope();
    Sheet sheet = await db.Sheets.SingleAsync(s => s.Id == 1);
    Console.WriteLine($"{who}: {sheet.Title}, total {sheet.Total}, version {sheet.Version}");
    Check(sheet.Title == expectedTitle, $"{who} reads the title \"{sheet.Title}\", expected \"{expectedTitle}\"");
    return sheet;
}

void Check(bool condition, string failure)
{
    if (!condition)
    {
        failures++;
        Console.Error.WriteLine("FAILED: " + failure);
    }
}
