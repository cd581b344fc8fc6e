using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace SharedEntities.FaultHistory.Tests;

/// <summary>
/// The size of a run. The CI size is the default; <c>SHAREDENTITIES_FAULT_SECONDS</c>,
/// <c>SHAREDENTITIES_FAULT_WORKERS</c>, <c>SHAREDENTITIES_FAULT_FLOWS</c>, <c>SHAREDENTITIES_FAULT_KEYS</c> and
/// <c>SHAREDENTITIES_FAULT_SEED</c> select a longer or different one (docs/fault-history.md).
/// </summary>
internal sealed record RunPlan(string Path, int Workers, double Seconds, int Keys, int Seed, int Flows = 4)
{
    /// <summary>Self-kills in a run: one per dangerous point at least, more in long runs.</summary>
    public int Kills => Math.Max(3, (int)(Seconds / 8));

    /// <summary>Processes started after the first ones: the kills' replacements, and a few for crashes.</summary>
    public int Restarts => Kills + 3;

    /// <summary>External faults at most (they are spaced by 0.3–0.9 s anyway).</summary>
    public int MaxExternalFaults => 10 + (int)(Seconds * 2);

    /// <summary>The scale a run must reach to count (a run that did almost nothing proves nothing), with room for a loaded machine.</summary>
    public int MinReads => (int)(Seconds * 10);

    public int MinCommits => (int)(Seconds * 3);

    public static RunPlan For(string path) => new(
        path,
        Workers: Setting("SHAREDENTITIES_FAULT_WORKERS", 4),
        Seconds: Setting("SHAREDENTITIES_FAULT_SECONDS", 25),
        Keys: Setting("SHAREDENTITIES_FAULT_KEYS", 3),
        Seed: Setting("SHAREDENTITIES_FAULT_SEED", Random.Shared.Next(1, 1_000_000)),
        Flows: Math.Clamp(Setting("SHAREDENTITIES_FAULT_FLOWS", 4), 1, 16));

    private static int Setting(string name, int fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
}

/// <summary>What a run produced: the checker's report, and what went wrong with the processes themselves.</summary>
internal sealed record RunResult(
    RunPlan Plan, string Setup, HistoryReport Report, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes, int Processes, TimeSpan Elapsed, string Folder)
{
    public string Summary => string.Create(CultureInfo.InvariantCulture,
        $"{Setup} / {Plan.Path}: {Plan.Workers} workers × {Plan.Flows} flows, {Processes} processes, {Elapsed.TotalSeconds:F1} s, {Plan.Keys} counters, seed {Plan.Seed}, logs in {Folder}\n") +
        Report + Lines("problems", Problems) + Lines("notes", Notes);

    private static string Lines(string title, IReadOnlyList<string> lines) => lines.Count == 0 ? "" : $"{title}:\n{string.Join('\n', lines)}\n";
}

/// <summary>
/// One fault-history run: creates the counters, starts the worker processes and, once they are all under way, runs
/// for the plan's time: injects the setup's external faults, starts a new process in the slot of one that died (while
/// the budget and the time last); then stops the workers (a stop file) and checks every history against the
/// database's final rows.
/// </summary>
internal static class FaultRun
{
    /// <summary>How long the first processes may take to start.</summary>
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(120);

    /// <summary>How long after the stop file the processes may take to end before they are killed.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(60);

    public static async Task<RunResult> RunAsync(IRunSetup setup, RunPlan plan, string folder)
    {
        var clock = Stopwatch.StartNew();
        var problems = new List<string>();
        setup.CreateCounters(plan.Keys);
        IReadOnlyList<CounterRow> initial = setup.ReadCounters();
        var random = new Random(plan.Seed);
        string faultLog = Path.Combine(folder, "faults.log");
        string stopFile = Path.Combine(folder, "stop");
        var slots = new Slot[plan.Workers];
        var kills = new Queue<FaultPoint>(Enumerable.Range(0, plan.Kills).Select(i => (FaultPoint)(i % 3)));
        int stallsAssigned = 0;
        int restarts = 0;
        var all = new List<WorkerProcess>();
        List<string> notes = [];
        TimeSpan runStart = TimeSpan.Zero, runEnd = TimeSpan.MaxValue;
        try
        {
            using (var injected = new HistoryWriter(faultLog))
            {
                for (int i = 0; i < slots.Length; i++)
                {
                    slots[i] = new Slot(i);
                    all.Add(slots[i].Start(Settings(i, 0)));
                }

                // The run's time counts from when every first process is under way: starting up takes seconds on a
                // loaded machine.
                while (!slots.All(s => s.HasRead) && clock.Elapsed < StartLimit && slots.Any(s => s.Current is not null))
                {
                    await Task.Delay(100);
                    Reap();
                }

                runStart = clock.Elapsed;
                runEnd = runStart + TimeSpan.FromSeconds(plan.Seconds);
                Task<List<string>> injector = InjectAsync(setup, plan, injected, clock, runEnd);
                while (clock.Elapsed < runEnd && slots.Any(s => s.Current is not null))
                {
                    await Task.Delay(100);
                    Reap();
                }

                await File.WriteAllTextAsync(stopFile, "");
                TimeSpan stopped = clock.Elapsed;
                while (slots.Any(s => s.Current is not null) && clock.Elapsed < stopped + Grace)
                {
                    await Task.Delay(100);
                    Reap();
                }

                foreach (WorkerProcess late in slots.Select(s => s.Current).OfType<WorkerProcess>())
                {
                    problems.Add($"{late.Name} was still running {Grace.TotalSeconds} s after the end of the run: killed");
                    late.Kill();
                }

                notes = await injector;
            }

            IReadOnlyList<CounterRow> final = setup.ReadCounters();
            IReadOnlyList<string> audit = setup.ReadAudit();
            await File.WriteAllLinesAsync(Path.Combine(folder, "database-audit.tsv"), audit);
            List<ProcessHistory> histories = [.. all.Select(w => ProcessHistory.Load(w.Name, w.Settings.Log)), ProcessHistory.Load("test", faultLog)];
            HistoryReport report = HistoryChecker.Check(histories, initial, final);
            notes.AddRange(UnloggedChanges(audit, histories));
            var result = new RunResult(plan, setup.Name, report, problems, notes, all.Count, clock.Elapsed - runStart, folder);
            await File.WriteAllTextAsync(Path.Combine(folder, "report.txt"),
                result.Summary + string.Join('\n', report.Violations));
            return result;
        }
        finally
        {
            foreach (WorkerProcess worker in all)
            {
                worker.Dispose(); // kills it if it is somehow still running: only the processes this run started
            }
        }

        // Ended processes: a crash is a problem; a process that died before the end is replaced while the budget lasts.
        void Reap()
        {
            foreach (Slot slot in slots.Where(s => s.Current is { HasExited: true }))
            {
                WorkerProcess ended = slot.Current!;
                slot.Current = null;
                if (ended.ExitCode != 0 && !ended.KilledItself)
                {
                    problems.Add($"{ended.Name} exited with code {ended.ExitCode}: {ended.Errors}");
                }

                double left = (runEnd - clock.Elapsed).TotalSeconds;
                if (ended.ExitCode != 0 && left > 3 && restarts < plan.Restarts)
                {
                    restarts++;
                    all.Add(slot.Start(Settings(slot.Index, slot.Generation, left)));
                }
            }
        }

        // Faults whose every kind a run must show are assigned, not drawn. Kills: first to the last workers (worker
        // 0 lives the whole run), then to replacements. Stalls: worker 0 after the raise, the others the other points,
        // the replacements each point in turn.
        WorkerSettings Settings(int worker, int generation, double? secondsLeft = null)
        {
            double left = secondsLeft ?? plan.Seconds;
            double killAfter = 2 + (random.NextDouble() * 3);
            bool killer = generation > 0 || worker >= plan.Workers - Math.Min(plan.Kills, plan.Workers - 1);
            FaultPoint? kill = killer && kills.Count > 0 && left > killAfter + 4 ? kills.Dequeue() : null;
            FaultPoint stall = generation == 0 ? (FaultPoint)(((int)FaultPoint.AfterRaise + worker) % 3) : (FaultPoint)(stallsAssigned++ % 3);
            return new WorkerSettings
            {
                Worker = worker,
                Generation = generation,
                Path = plan.Path,
                Database = setup.Database,
                Store = setup.Store,
                Log = Path.Combine(folder, $"worker{worker}.{generation}.log"),
                StopFile = stopFile,
                Seconds = StartLimit.TotalSeconds + left + 30, // its own bound, beyond the stop file
                MaxOperations = 1_000_000,
                Keys = plan.Keys,
                Seed = random.Next(),
                Flows = plan.Flows,
                EvictsPerPoint = Math.Max(4, (int)(left / 6)),
                StallPoint = stall,
                Stalls = 1 + (int)(left / 60),
                KillPoint = kill,
                KillAfterSeconds = killAfter,
            };
        }
    }

    /// <summary>
    /// Injects the setup's external faults in shuffled rounds (each kind once a round), spaced by 0.3–0.9 s, until 2 s
    /// before <paramref name="runEnd"/> or the plan's bound. Returns the faults that failed (the database was
    /// restarting, say): not a failed run, the check of the kinds counts only those that took effect.
    /// </summary>
    // The database's changes of a counter's value that no history logged as a commit or an indeterminate commit of
    // that version and value: the history checker reports what they break; these say which process made them.
    private static IEnumerable<string> UnloggedChanges(IReadOnlyList<string> audit, List<ProcessHistory> histories)
    {
        HashSet<(int, long, long)> logged = [.. histories.SelectMany(h => h.Events)
            .Where(e => e.Kind is EventKind.Commit or EventKind.Maybe).Select(e => (e.Key, e.Version, e.Value))];
        foreach (string line in audit.Skip(1))
        {
            string[] f = line.Split('\t');
            (int key, long fromValue, long version, long value) =
                (int.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture), long.Parse(f[4], CultureInfo.InvariantCulture), long.Parse(f[5], CultureInfo.InvariantCulture));
            if (value != fromValue && !logged.Contains((key, version, value)))
            {
                yield return $"the database committed counter {key} version {f[2]} → {version}, value {fromValue} → {value} (audit #{f[0]}, by {f[6]}), which no history logged";
            }
        }
    }

    private static async Task<List<string>> InjectAsync(IRunSetup setup, RunPlan plan, HistoryWriter log, Stopwatch clock, TimeSpan runEnd)
    {
        var failed = new List<string>();
        var random = new Random(plan.Seed + 1);
        var round = new Queue<string>();
        for (int injected = 0; injected < plan.MaxExternalFaults && clock.Elapsed < runEnd - TimeSpan.FromSeconds(2); injected++)
        {
            await Task.Delay(random.Next(300, 900));
            if (round.Count == 0)
            {
                round = new Queue<string>(setup.ExternalFaults.OrderBy(_ => random.Next()));
            }

            string kind = round.Dequeue();
            int key = random.Next(1, plan.Keys + 1);
            long at = Stopwatch.GetTimestamp();
            string outcome = "ok";
            try
            {
                await Task.Run(() => setup.Inject(kind, key, plan.Keys, random));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                outcome = "failed";
                failed.Add($"the external fault {kind} failed: {ex.GetType().Name}: {ex.Message}");
            }

            log.Write(new HistoryEvent(EventKind.Fault, at, kind == ExternalFault.TokenAhead ? key : 0, Detail: $"{kind}:{outcome}"));
        }

        return failed;
    }

    /// <summary>One worker's place in the run: its current process and how many came before.</summary>
    private sealed class Slot(int index)
    {
        public int Index => index;

        public int Generation { get; private set; }

        public WorkerProcess? Current { get; set; }

        private readonly List<WorkerProcess> _processes = [];

        /// <summary>Whether a process of the slot has accepted a read (the slot is under way).</summary>
        public bool HasRead => _processes.Any(p => p.HasRead);

        public WorkerProcess Start(WorkerSettings settings)
        {
            Current = WorkerProcess.Start(settings);
            _processes.Add(Current);
            Generation++;
            return Current;
        }
    }
}

/// <summary>A FaultHistory.Worker process that this test started (and only ever kills by its <see cref="Process"/> object).</summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _errors = new();

    private WorkerProcess(WorkerSettings settings, Process process)
    {
        Settings = settings;
        _process = process;
    }

    public WorkerSettings Settings { get; }

    public string Name => $"worker{Settings.Worker}.{Settings.Generation}";

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Whether its history ends with one of its own kills.</summary>
    public bool KilledItself => File.Exists(Settings.Log) && File.ReadLines(Settings.Log).Select(HistoryEvent.Parse).LastOrDefault(e => e is not null) is
        { Kind: EventKind.Fault, Detail: var detail } && detail.StartsWith("kill-", StringComparison.Ordinal);

    public bool HasRead => File.Exists(Settings.Log) && File.ReadLines(Settings.Log).Any(l => l.StartsWith("read ", StringComparison.Ordinal));

    public string Errors
    {
        get
        {
            lock (_errors)
            {
                return _errors.ToString();
            }
        }
    }

    public static WorkerProcess Start(WorkerSettings settings)
    {
        // bin/<Configuration>/net10.0/ of this assembly → the worker's own output folder.
        string configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        string worker = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "FaultHistory.Worker", "bin", configuration, "net10.0",
            "SharedEntities.FaultHistory.Worker.dll"));
        Assert.True(File.Exists(worker), $"The worker is not built: {worker}");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(worker);
        foreach ((string name, string value) in settings.ToEnvironment())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        var started = new WorkerProcess(settings, process);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (started._errors)
                {
                    started._errors.AppendLine(e.Data);
                }
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return started;
    }

    public void Kill()
    {
        try
        {
            _process.Kill();
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }
}
