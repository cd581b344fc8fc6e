using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SharedEntities.Tests.Postgres;

// Compiled into Database.Tests and, linked, into the other test projects and the benchmarks (no xunit here: the
// collection that shares one cluster is PostgresFixture.cs).
/// <summary>
/// A private PostgreSQL cluster for the test run: initdb under a temp folder as the <c>postgres</c> user, started on a
/// free loopback port, stopped and removed at the end (also when the process exits without disposing it).
/// </summary>
public sealed class PostgresCluster : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "se-pg-" + Guid.NewGuid().ToString("N")[..12]);
    private int _stopped;

    public PostgresCluster()
    {
        if (Binary("initdb") is null || Binary("pg_ctl") is null)
        {
            throw new InvalidOperationException(
                $"PostgreSQL tests need initdb and pg_ctl (PostgreSQL 15) in {BinariesVariable} or on PATH, and a 'postgres' OS user to run the " +
                "server as (PostgreSQL refuses to run as root).");
        }

        Port = FreePort();
        Directory.CreateDirectory(_dir);
        Run("chown", "postgres", _dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
        Run("runuser", "-u", "postgres", "--", Binary("initdb")!, "-D", Path.Combine(_dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync");
        Run("runuser", "-u", "postgres", "--", Binary("pg_ctl")!, "-D", Path.Combine(_dir, "data"), "-w", "-t", "60",
            "-o", $"-p {Port} -k {_dir} -h 127.0.0.1 -c fsync=off -c max_connections=60", "-l", Path.Combine(_dir, "log"), "start");
        ConnectionString = $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=true;Timeout=30";
    }

    public int Port { get; }

    public string ConnectionString { get; }

    /// <summary>
    /// <c>pg_ctl restart -m fast</c>: every session is disconnected (open transactions roll back) and the server comes
    /// back on the same port with the same settings; returns when it accepts connections again.
    /// </summary>
    public void Restart() =>
        Run("runuser", "-u", "postgres", "--", Binary("pg_ctl")!, "-D", Path.Combine(_dir, "data"), "-m", "fast", "-w", "-t", "60",
            "-l", Path.Combine(_dir, "log"), "restart");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        try
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            Run("runuser", "-u", "postgres", "--", Binary("pg_ctl")!, "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop");
        }
        catch (InvalidOperationException)
        {
            // Already stopped, or never started.
        }
        finally
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The folder of the PostgreSQL binaries to run, when not those on PATH (e.g. <c>/usr/lib/postgresql/16/bin</c>).</summary>
    public const string BinariesVariable = "SHAREDENTITIES_TEST_PGBIN";

    private static string? Binary(string program) =>
        Environment.GetEnvironmentVariable(BinariesVariable) is { Length: > 0 } folder
            ? (File.Exists(Path.Combine(folder, program)) ? Path.Combine(folder, program) : null)
            : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    private static void Run(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {program}.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill();
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} timed out.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {stdout.Result}{stderr.Result}");
        }
    }
}
