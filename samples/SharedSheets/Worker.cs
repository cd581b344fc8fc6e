using System.Data;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using SharedEntities;
using SharedEntities.EntityFrameworkCore;

namespace SharedSheets;

/// <summary>
/// One process of the sample, driven by the coordinator over standard input: one command per line, one reply line
/// per command (<c>progress …</c> lines may come before a reply). It serves each command the way a web server serves a
/// request: a fresh scope and a new context, and the sheet read by key (<c>FindSharedAsync</c>), which the process-wide
/// entity cache answers with one store round trip while no other process has moved the sheet on. One story keeps a
/// sheet object across commands instead (<c>hold</c>), the way an application keeps an object in memory: its context
/// is long gone when another process deletes the row, and touching it still notices.
/// </summary>
internal sealed class Worker(Deployment deployment, TextReader input, TextWriter output, bool breakGuarantee)
{
    private readonly Dictionary<int, Sheet> _held = [];
    private long _servedFromCache;

    public async Task<int> RunAsync()
    {
        using Coherence coherence = deployment.CreateCoherence();
        using var cacheHits = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == SharedEntitiesMetrics.MeterName && instrument.Name == "sharedentities.cache.hits")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        cacheHits.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _servedFromCache, value));
        cacheHits.Start();
        Func<SheetsContext> db = () => deployment.CreateContext(coherence); // one context per command, as per request
        while (await input.ReadLineAsync() is { } line)
        {
            string[] words = line.Split(' ', 3);
            if (words[0] == "quit")
            {
                return 0;
            }

            string reply;
            try
            {
                reply = words[0] switch
                {
                    "read" => await ReadAsync(coherence, db, Id(words)),
                    "hold" => await HoldAsync(coherence, db, Id(words)),
                    "read-held" => await ReadHeldAsync(coherence, Id(words)),
                    "stats" => Invariant($"ok {Interlocked.Read(ref _servedFromCache)}"),
                    "rename" => await RenameAsync(coherence, db, Id(words), words[2]),
                    "delete" => await DeleteAsync(coherence, db, Id(words)),
                    "recalculate" => await RecalculateAsync(coherence, db, Id(words)),
                    "recalculate-in-snapshot" => await RecalculateInSnapshotAsync(coherence, db, Id(words)),
                    "count" => await CountAsync(coherence, db, Id(words), words[2]),
                    _ => "error unknown command: " + line,
                };
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                reply = $"error {ex.GetType().Name}: {ex.Message.ReplaceLineEndings(" ")}";
            }

            Reply(reply);
        }

        return 0;
    }

    /// <summary>The seed's read: the sheet's title, in a fresh scope and a new context (from the cache if it has not moved on).</summary>
    private static async Task<string> ReadAsync(Coherence coherence, Func<SheetsContext> newContext, int id)
    {
        await using FreshScope scope = coherence.BeginScope();
        await using SheetsContext db = newContext();
        return await db.Sheets.FindSharedAsync(id) is { } sheet ? Invariant($"ok {sheet.Version} {sheet.Title}") : "deleted";
    }

    /// <summary>Reads the sheet through a context that is disposed at once, and keeps the object for later commands.</summary>
    private async Task<string> HoldAsync(Coherence coherence, Func<SheetsContext> newContext, int id)
    {
        await using FreshScope scope = coherence.BeginScope();
        await using SheetsContext db = newContext();
        Sheet sheet = await db.Sheets.FindSharedAsync(id) ?? throw new InvalidOperationException($"No sheet {id}.");
        _held[id] = sheet;
        return Invariant($"ok {sheet.Version} {sheet.Title}");
    }

    /// <summary>Touches the kept object in a fresh scope: it is checked (and reloaded) on a connection of the runtime's own.</summary>
    private async Task<string> ReadHeldAsync(Coherence coherence, int id)
    {
        await using FreshScope scope = coherence.BeginScope();
        Sheet sheet = _held[id];
        try
        {
            string title = sheet.Title;
            return Invariant($"ok {sheet.Version} {title}");
        }
        catch (EntityDeletedException)
        {
            _held.Remove(id);
            return "deleted";
        }
    }

    private static async Task<string> RenameAsync(Coherence coherence, Func<SheetsContext> newContext, int id, string title)
    {
        await using FreshScope scope = coherence.BeginScope();
        await using SheetsContext db = newContext();
        Sheet sheet = await FindAsync(db, id);
        string before = sheet.Title;
        sheet.Title = title;
        sheet.LastModified = DateTime.UtcNow;
        await db.SaveChangesSharedAsync(); // UPDATE … WHERE Version = @v, dirty token, COMMIT, publish
        return Invariant($"ok {sheet.Version} {before}");
    }

    private static async Task<string> DeleteAsync(Coherence coherence, Func<SheetsContext> newContext, int id)
    {
        await using FreshScope scope = coherence.BeginScope();
        await using SheetsContext db = newContext();
        Sheet sheet = await FindAsync(db, id);
        string title = sheet.Title;
        db.Sheets.Remove(sheet);
        await db.SaveChangesSharedAsync(); // DELETE … WHERE Version = @v, then the tombstone
        return "ok " + title;
    }

    /// <summary>
    /// The Django story: a long computation in one scope, which reports "started" and waits for the coordinator's
    /// "continue" (meanwhile another process edits the sheet), then writes its result. The version-guarded write
    /// refuses it: <see cref="StaleEntityException"/>, and the other process's edit is kept.
    /// </summary>
    private async Task<string> RecalculateAsync(Coherence coherence, Func<SheetsContext> newContext, int id)
    {
        await using FreshScope scope = coherence.BeginScope();
        await using SheetsContext db = newContext();
        Sheet sheet = await FindAsync(db, id);
        DateTime started = sheet.LastModified;
        decimal total = sheet.Total * 1.1m; // the "long recalculation"
        Reply(Invariant($"started {sheet.Version} {started:O}"));
        await WaitForContinueAsync();
        sheet.Total = total;
        sheet.LastModified = DateTime.UtcNow;
        try
        {
            await db.SaveChangesSharedAsync();
            return Invariant($"ok committed {sheet.Version}");
        }
        catch (StaleEntityException)
        {
            return "aborted";
        }
    }

    /// <summary>
    /// The Django bug itself: the check runs inside a transaction that has already read (REPEATABLE READ on
    /// PostgreSQL, a deferred transaction on SQLite), so the database can only return the old row. SharedEntities
    /// refuses with <see cref="StaleSnapshotException"/> instead of handing back the old value.
    /// </summary>
    private async Task<string> RecalculateInSnapshotAsync(Coherence coherence, Func<SheetsContext> newContext, int id)
    {
        await using SheetsContext db = newContext();
        Sheet sheet;
        await using (coherence.BeginScope())
        {
            sheet = await FindAsync(db, id);
        }

        await using IDbContextTransaction transaction = await BeginSnapshotAsync(db);
        _ = await db.Sheets.AsNoTracking().Where(s => s.Id == id).Select(s => s.Version).SingleAsync(); // the first read fixes the snapshot
        Reply("started");
        await WaitForContinueAsync();
        try
        {
            await using FreshScope scope = coherence.BeginScope();
            string title = sheet.Title; // the check: another process committed, the reload runs in the old snapshot
            return Invariant($"stale-accepted {sheet.Version} {title}");
        }
        catch (StaleSnapshotException refused)
        {
            return "refused " + refused.Message.ReplaceLineEndings(" ");
        }
        finally
        {
            await transaction.RollbackAsync();
        }
    }

    /// <summary>
    /// The contended counter: read, increment, commit, retry on conflict. Logs every accepted read (version, time
    /// before its check) and every commit (version, time after it) for the coordinator's checker.
    /// </summary>
    private async Task<string> CountAsync(Coherence coherence, Func<SheetsContext> newContext, int id, string arguments)
    {
        string[] parts = arguments.Split(' ', 3);
        int loops = int.Parse(parts[0], CultureInfo.InvariantCulture);
        var limit = TimeSpan.FromSeconds(int.Parse(parts[1], CultureInfo.InvariantCulture));
        await using var log = new StreamWriter(parts[2]);
        if (breakGuarantee)
        {
            await using SheetsContext unguarded = newContext();
            return await CountUnguardedAsync(unguarded, id, loops, limit);
        }

        int commits = 0, conflicts = 0;
        var clock = Stopwatch.StartNew();
        for (int attempt = 0; commits < loops && attempt < loops * 20 && clock.Elapsed < limit; attempt++)
        {
            try
            {
                await using FreshScope scope = coherence.BeginScope();
                await using SheetsContext db = newContext();
                long checkBegan = DateTime.UtcNow.Ticks;
                Sheet sheet = await FindAsync(db, id); // from the cache if no other process committed since; else loaded
                long edits = sheet.Edits;
                await log.WriteLineAsync(Invariant($"read {sheet.Version} {checkBegan}"));
                sheet.Edits = edits + 1;
                await db.SaveChangesSharedAsync();
                await log.WriteLineAsync(Invariant($"commit {sheet.Version} {DateTime.UtcNow.Ticks}"));
                commits++;
                if (commits % 10 == 0)
                {
                    Reply(Invariant($"progress {commits} {conflicts}"));
                }
            }
            catch (StaleEntityException)
            {
                conflicts++; // another process committed first; nothing was written; the next request reads the new row
            }
        }

        return Invariant($"ok {commits} {conflicts}");
    }

    /// <summary>The seed's protocol, literally (test aid <c>--break-guarantee</c>): read the row, work, write it back unconditionally.</summary>
    private static async Task<string> CountUnguardedAsync(SheetsContext db, int id, int loops, TimeSpan limit)
    {
        int commits = 0;
        var clock = Stopwatch.StartNew();
        for (; commits < loops && clock.Elapsed < limit; commits++)
        {
            long edits = await Deployment.ReadEditsAsync(db, id);
            await Task.Delay(1); // the application's work between the read and the write
            await Deployment.WriteEditsUnguardedAsync(db, id, edits + 1);
        }

        return Invariant($"ok {commits} 0");
    }

    private static async Task<Sheet> FindAsync(SheetsContext db, int id) =>
        await db.Sheets.FindSharedAsync(id) ?? throw new InvalidOperationException($"No sheet {id}.");

    private static async Task<IDbContextTransaction> BeginSnapshotAsync(SheetsContext db)
    {
        if (db.Database.GetDbConnection() is SqliteConnection sqlite)
        {
            // BEGIN (deferred): in WAL mode the first read fixes what the transaction sees, and no lock is held.
            await db.Database.OpenConnectionAsync();
            return await db.Database.UseTransactionAsync(sqlite.BeginTransaction(deferred: true))
                ?? throw new InvalidOperationException("EF Core did not take the SQLite transaction.");
        }

        return await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead);
    }

    private async Task WaitForContinueAsync()
    {
        string? line = await input.ReadLineAsync();
        if (line != "continue")
        {
            throw new InvalidOperationException($"Expected \"continue\", got \"{line}\".");
        }
    }

    private void Reply(string line)
    {
        output.WriteLine(line);
        output.Flush();
    }

    private static int Id(string[] words) => int.Parse(words[1], CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
