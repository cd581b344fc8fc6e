using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using SharedEntities;
using SharedEntities.EntityFrameworkCore;

namespace SharedSheets;

/// <summary>
/// Plays both seed stories with worker processes and tells what happens. Counts what the summary line reports:
/// commits, lost updates, stale reads accepted, recalculations aborted, deletes noticed.
/// </summary>
internal sealed class Coordinator(SampleOptions options, TextWriter output)
{
    private const int Budget = 1, Scratch = 2, Tally = 3;
    private static readonly TimeSpan CounterTimeLimit = TimeSpan.FromMinutes(2);

    private int _commits, _lostUpdates, _staleAccepted, _recalcsAborted, _deletesNoticed;
    private long _servedFromCache;

    /// <summary>0 when every guarantee held, 1 when one was violated.</summary>
    public async Task<int> RunAsync()
    {
        string folder = Directory.CreateTempSubdirectory("sharedsheets-").FullName;
        Deployment deployment = Deployment.Create(options, folder);
        output.WriteLine($"SharedSheets: both seed stories across {options.Processes} worker processes.");
        output.WriteLine($"Storage: {deployment.Describe()}.");
        try
        {
            await SetUpAsync(deployment);
            var workers = new List<WorkerProcess>();
            try
            {
                for (int i = 1; i <= options.Processes; i++)
                {
                    workers.Add(WorkerProcess.Start("p" + i.ToString(CultureInfo.InvariantCulture), deployment, options.BreakGuarantee));
                }

                output.WriteLine();
                await SeedStoryAsync(workers);
                output.WriteLine();
                await DjangoStoryAsync(workers[0], workers[1]);
                output.WriteLine();
                await CounterAsync(workers, deployment, folder);
                foreach (WorkerProcess worker in workers)
                {
                    _servedFromCache += Entity(await worker.SendAsync("stats")).Version;
                }
            }
            finally
            {
                foreach (WorkerProcess worker in workers)
                {
                    await worker.DisposeAsync();
                }
            }
        }
        finally
        {
            await deployment.DropSchemaAsync();
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }

        output.WriteLine();
        output.WriteLine(Invariant(
            $"summary: processes={options.Processes} commits={_commits} lost_updates={_lostUpdates} stale_accepted={_staleAccepted} recalcs_aborted={_recalcsAborted} deletes_noticed={_deletesNoticed} served_from_cache={_servedFromCache}"));
        return _lostUpdates == 0 && _staleAccepted == 0 ? 0 : 1;
    }

    private static async Task SetUpAsync(Deployment deployment)
    {
        using Coherence coherence = deployment.CreateCoherence();
        await using SheetsContext db = deployment.CreateContext(coherence);
        await deployment.CreateSchemaAsync(db);
        await using FreshScope scope = coherence.BeginScope();
        DateTime now = DateTime.UtcNow;
        db.Sheets.AddRange(
            new Sheet { Id = Budget, Title = "Budget", LastModified = now, Total = 1200m },
            new Sheet { Id = Scratch, Title = "Scratch", LastModified = now },
            new Sheet { Id = Tally, Title = "Tally", LastModified = now });
        await db.SaveChangesSharedAsync();
    }

    /// <summary>The SQLObject story: a rename in one process is seen by the others; a delete is noticed.</summary>
    private async Task SeedStoryAsync(List<WorkerProcess> workers)
    {
        output.WriteLine("1. The SQLObject story: objects in many processes see each other's writes, and deletes are noticed.");
        foreach (WorkerProcess worker in workers)
        {
            (long version, string title) = Entity(await worker.SendAsync($"read {Budget}"));
            Say(worker, $"reads sheet {Budget}: \"{title}\" (version {version})");
        }

        WorkerProcess writer = workers[0];
        (long renamed, _) = Entity(await writer.SendAsync($"rename {Budget} Budget 2027"));
        _commits++;
        Say(writer, $"renames sheet {Budget} to \"Budget 2027\" and commits (version {renamed})");
        foreach (WorkerProcess reader in workers.Skip(1))
        {
            (long version, string title) = Entity(await reader.SendAsync($"read {Budget}"));
            bool fresh = title == "Budget 2027" && version == renamed;
            _staleAccepted += fresh ? 0 : 1;
            Say(reader, fresh
                ? $"its next request reads \"{title}\" (version {version}): loaded from the database, because the token moved on past its cached row"
                : $"its next request reads \"{title}\" (version {version}): STALE, version {renamed} was committed");
        }

        foreach (WorkerProcess worker in workers.Skip(1))
        {
            _ = Entity(await worker.SendAsync($"hold {Scratch}"));
        }

        output.WriteLine($"   every other process keeps its sheet {Scratch} object across requests; the context that loaded it is disposed");

        string deleted = await writer.SendAsync($"delete {Scratch}");
        _commits++;
        Say(writer, $"deletes sheet {Scratch} (\"{deleted["ok ".Length..]}\") and commits");
        foreach (WorkerProcess reader in workers.Skip(1))
        {
            string reply = await reader.SendAsync($"read-held {Scratch}");
            if (reply == "deleted")
            {
                _deletesNoticed++;
                Say(reader, $"touches its kept copy of sheet {Scratch}: EntityDeletedException, the delete is noticed");
            }
            else
            {
                _staleAccepted++;
                Say(reader, $"touches its kept copy of sheet {Scratch}: STALE, still reads \"{Entity(reply).Title}\"");
            }
        }
    }

    /// <summary>The Django story: a long recalculation is refused when another process changed the sheet meanwhile.</summary>
    private async Task DjangoStoryAsync(WorkerProcess editor, WorkerProcess recalculator)
    {
        output.WriteLine("2. The Django story: a long recalculation is aborted when another process changes the sheet meanwhile.");
        string started = await recalculator.SendAsync($"recalculate {Budget}");
        Say(recalculator, $"starts recalculating sheet {Budget} (version {started.Split(' ')[1]}) ...");
        (long edited, _) = Entity(await editor.SendAsync($"rename {Budget} Budget 2027 (edited)"));
        _commits++;
        Say(editor, $"edits sheet {Budget} and commits (version {edited})");
        string outcome = await recalculator.SendAsync("continue");
        if (outcome == "aborted")
        {
            _recalcsAborted++;
            Say(recalculator, "... its commit is refused: StaleEntityException. Recalculation aborted; the edit is kept.");
        }
        else
        {
            _commits++;
            _lostUpdates++;
            Say(recalculator, $"... its commit went through ({outcome}): LOST UPDATE, it overwrote the edit");
        }

        output.WriteLine("   The same check inside a transaction that has already read (the Django bug: REPEATABLE READ):");
        _ = await recalculator.SendAsync($"recalculate-in-snapshot {Budget}");
        Say(recalculator, "starts again, inside its transaction ...");
        (long again, _) = Entity(await editor.SendAsync($"rename {Budget} Budget 2027 (edited twice)"));
        _commits++;
        Say(editor, $"edits sheet {Budget} and commits (version {again})");
        string checkedInSnapshot = await recalculator.SendAsync("continue");
        if (checkedInSnapshot.StartsWith("refused ", StringComparison.Ordinal))
        {
            _recalcsAborted++;
            Say(recalculator, "... its check is refused: StaleSnapshotException, not the old row. Recalculation aborted.");
        }
        else
        {
            _staleAccepted++;
            Say(recalculator, $"... its check returned the old row: STALE ({checkedInSnapshot})");
        }
    }

    /// <summary>Every worker increments one counter, retrying on conflicts; then the counter and the logs are checked.</summary>
    private async Task CounterAsync(List<WorkerProcess> workers, Deployment deployment, string folder)
    {
        output.WriteLine(Invariant(
            $"3. A contended counter: {workers.Count} processes x {options.Loops} increments of sheet {Tally}, each retrying when another process committed first."));
        var progress = new Progress(output, options.Loops * workers.Count);
        var clock = Stopwatch.StartNew();
        string[] logs = workers.Select(w => Path.Combine(folder, w.Name + ".log")).ToArray();
        string[] replies = await Task.WhenAll(workers.Select((worker, i) =>
            worker.SendAsync(Invariant($"count {Tally} {options.Loops} {(int)CounterTimeLimit.TotalSeconds} {logs[i]}"), line => progress.Report(worker.Name, line))));
        progress.Finish();

        long commits = 0, conflicts = 0;
        foreach (string reply in replies)
        {
            string[] parts = reply.Split(' ');
            commits += long.Parse(parts[1], CultureInfo.InvariantCulture);
            conflicts += long.Parse(parts[2], CultureInfo.InvariantCulture);
        }

        _commits += (int)commits;
        long counter;
        using (Coherence coherence = deployment.CreateCoherence())
        await using (SheetsContext db = deployment.CreateContext(coherence))
        {
            counter = await Deployment.ReadEditsAsync(db, Tally);
        }

        long lost = commits - counter;
        _lostUpdates += (int)Math.Max(lost, 0);
        output.WriteLine(Invariant(
            $"   {commits} commits in {clock.Elapsed.TotalSeconds:0.0} s, {conflicts} conflicts retried; the counter reads {counter}: {(lost == 0 ? "no lost update" : $"{lost} LOST UPDATES")}"));

        CheckResult check = GuaranteeChecker.Check(logs.SelectMany(File.ReadLines));
        _staleAccepted += check.StaleAccepted;
        output.WriteLine(check.StaleAccepted == 0
            ? Invariant($"   checker: {check.Reads} accepted reads against {check.Commits} commits; none older than a version committed before its check began")
            : Invariant($"   checker: {check.StaleAccepted} STALE READS ACCEPTED, e.g. {check.FirstViolation}"));
    }

    private void Say(WorkerProcess worker, string text) => output.WriteLine($"   [{worker.Name}] {text}");

    /// <summary>Parses "ok &lt;version&gt; &lt;title&gt;".</summary>
    private static (long Version, string Title) Entity(string reply)
    {
        string[] parts = reply.Split(' ', 3);
        if (parts.Length < 2 || parts[0] != "ok")
        {
            throw new WorkerFailedException($"Unexpected reply \"{reply}\".");
        }

        return (long.Parse(parts[1], CultureInfo.InvariantCulture), parts.Length > 2 ? parts[2] : "");
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// A progress line for the counter phase: rewritten in place on a terminal, printed at most once a second
    /// when the output is redirected.
    /// </summary>
    private sealed class Progress(TextWriter output, int target)
    {
        private readonly Dictionary<string, (long Commits, long Conflicts)> _byWorker = [];
        private readonly Stopwatch _sinceLast = Stopwatch.StartNew();
        private readonly bool _interactive = !Console.IsOutputRedirected && ReferenceEquals(output, Console.Out);
        private bool _printed;

        public void Report(string worker, string line)
        {
            string[] parts = line.Split(' ');
            lock (_byWorker)
            {
                _byWorker[worker] = (long.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture));
                if (_sinceLast.Elapsed < TimeSpan.FromSeconds(_interactive ? 0.25 : 1))
                {
                    return;
                }

                _sinceLast.Restart();
                string text = Invariant($"   progress: {_byWorker.Values.Sum(v => v.Commits)}/{target} commits, {_byWorker.Values.Sum(v => v.Conflicts)} conflicts retried");
                output.Write(_interactive ? "\r" + text : text + Environment.NewLine);
                _printed = true;
            }
        }

        public void Finish()
        {
            if (_interactive && _printed)
            {
                output.WriteLine();
            }
        }
    }
}
