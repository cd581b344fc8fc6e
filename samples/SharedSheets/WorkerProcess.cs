using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace SharedSheets;

/// <summary>A worker: this same program, started again with <c>--worker</c>, driven over its standard input.</summary>
internal sealed class WorkerProcess : IAsyncDisposable
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromMinutes(3);

    private readonly Process _process;
    private readonly StringBuilder _errors = new();

    private WorkerProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public static WorkerProcess Start(string name, Deployment deployment, bool breakGuarantee)
    {
        string host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location); // run as `dotnet SharedSheets.dll`
        }

        start.ArgumentList.Add("--worker");
        start.ArgumentList.Add(name);
        if (breakGuarantee)
        {
            start.ArgumentList.Add("--break-guarantee");
        }

        start.Environment[Deployment.EnvironmentVariable] = deployment.ToJson();

        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start worker {name}.");
        var worker = new WorkerProcess(name, process);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (worker._errors)
                {
                    worker._errors.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>Sends one command and returns its reply; <c>progress</c> lines on the way go to <paramref name="progress"/>.</summary>
    public async Task<string> SendAsync(string command, Action<string>? progress = null)
    {
        await _process.StandardInput.WriteLineAsync(command);
        await _process.StandardInput.FlushAsync();
        return await ReplyAsync(command, progress);
    }

    /// <summary>Reads the next reply (after a command that answers in two steps, like <c>recalculate</c>).</summary>
    public async Task<string> ReplyAsync(string command, Action<string>? progress = null)
    {
        using var timeout = new CancellationTokenSource(ReplyTimeout);
        while (true)
        {
            string? line;
            try
            {
                line = await _process.StandardOutput.ReadLineAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new WorkerFailedException($"Worker {Name} did not answer \"{command}\" within {ReplyTimeout.TotalMinutes} minutes.");
            }

            if (line is null)
            {
                await _process.WaitForExitAsync();
                throw new WorkerFailedException($"Worker {Name} exited ({_process.ExitCode}) during \"{command}\": {Errors()}");
            }

            if (line.StartsWith("progress ", StringComparison.Ordinal))
            {
                progress?.Invoke(line);
                continue;
            }

            if (line.StartsWith("error ", StringComparison.Ordinal))
            {
                throw new WorkerFailedException($"Worker {Name} failed \"{command}\": {line["error ".Length..]}");
            }

            return line;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                await _process.StandardInput.WriteLineAsync("quit");
                await _process.StandardInput.FlushAsync();
            }
        }
        catch (IOException)
        {
            // It is gone already.
        }

        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true); // only the process this coordinator started
        }

        _process.Dispose();
    }

    private string Errors()
    {
        lock (_errors)
        {
            return _errors.Length == 0 ? "(nothing on stderr)" : _errors.ToString().Trim();
        }
    }
}

/// <summary>A worker crashed, refused a command or stopped answering: the run cannot say anything about the guarantees.</summary>
internal sealed class WorkerFailedException(string message) : Exception(message);
