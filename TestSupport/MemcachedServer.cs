using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// A memcached process of the test's own, on a free loopback port: started in the constructor, stopped (by its own
/// process id) in <see cref="Dispose"/>. <see cref="Kill"/> and <see cref="Start"/> (or <see cref="Restart"/>) play
/// a crash and a restart on the same port.
/// </summary>
public sealed class MemcachedServer : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    private readonly int _memoryMb;
    private readonly string[] _extraArguments;
    private readonly StringBuilder _log = new();
    private Process? _process;

    public MemcachedServer()
        : this(memoryMb: 64, [])
    {
    }

    // Not public: xunit wants one public constructor on a fixture. Tests that need a small server call Create.
    private MemcachedServer(int memoryMb, string[] extraArguments)
    {
        _memoryMb = memoryMb;
        _extraArguments = extraArguments;
        for (int attempt = 1; ; attempt++)
        {
            Port = FreePort();
            try
            {
                Start();
                return;
            }
            catch (InvalidOperationException) when (attempt < 3 && !IsRunning)
            {
                // Another process took the port between our probe and memcached's bind: try another.
            }
        }
    }

    /// <summary>A server with <paramref name="memoryMb"/> megabytes of item memory (<c>-m</c>).</summary>
    public static MemcachedServer Create(int memoryMb) => new(memoryMb, []);

    /// <summary>
    /// A server started with <paramref name="extraArguments"/> after the usual ones (e.g. <c>-I 2m</c> for a larger
    /// item size limit, <c>-Z</c> for TLS, <c>-Y file</c> for authentication); they apply to every (re)start.
    /// </summary>
    public static MemcachedServer WithArguments(params string[] extraArguments) => new(memoryMb: 64, extraArguments);

    /// <summary>The port memcached listens on (127.0.0.1 only).</summary>
    public int Port { get; private set; }

    /// <summary><c>127.0.0.1:port</c>.</summary>
    public string Address => $"127.0.0.1:{Port}";

    public MemcachedEndpoint Endpoint => new("127.0.0.1", Port);

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Starts memcached (again) on <see cref="Port"/> and waits until it accepts connections.</summary>
    public void Start()
    {
        if (IsRunning)
        {
            return;
        }

        string binary = FindBinary();
        var start = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        if (Environment.UserName == "root")
        {
            start.ArgumentList.Add("-u");
            start.ArgumentList.Add("nobody");
        }

        foreach (string argument in new[] { "-l", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "0", "-m", _memoryMb.ToString(System.Globalization.CultureInfo.InvariantCulture), "-t", "2" }.Concat(_extraArguments))
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {binary}.");
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartTimeout)
        {
            if (_process.HasExited)
            {
                int code = _process.ExitCode;
                Kill();
                throw new InvalidOperationException($"memcached exited with code {code} at start on port {Port}: {Log}");
            }

            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(10);
            }
        }

        Kill();
        throw new InvalidOperationException($"memcached did not accept connections on port {Port} within {StartTimeout.TotalSeconds} s: {Log}");
    }

    private const int SigCont = 18;
    private const int SigStop = 19;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    private void Signal(int signal)
    {
        Process process = _process ?? throw new InvalidOperationException("memcached is not running.");
        if (SendSignal(process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}.");
        }
    }

    /// <summary>Kills the process (SIGKILL, like a crash) and waits for it to exit.</summary>
    public void Kill()
    {
        Process? process = _process;
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            process.Dispose();
            _process = null;
        }
    }

    /// <summary>Stops the process (SIGSTOP): it keeps its connections and items but answers nothing, like a hung server.</summary>
    public void Pause() => Signal(SigStop);

    /// <summary>Lets a paused process go on (SIGCONT).</summary>
    public void Resume() => Signal(SigCont);

    /// <summary>Kills and starts again on the same port: every item is gone.</summary>
    public void Restart()
    {
        Kill();
        Start();
    }

    /// <summary>
    /// Sends raw protocol text followed by <c>mn</c> and returns everything the server answered before <c>MN</c>
    /// (for planting odd values and checking what the store wrote).
    /// </summary>
    public string Raw(string commands) => Raw(Port, commands, TimeSpan.FromSeconds(5));

    /// <summary>
    /// <see cref="Raw(string)"/> against the memcached on 127.0.0.1:<paramref name="port"/>, for processes that did not
    /// start it (the fault-history workers evict keys this way); an <see cref="IOException"/> after
    /// <paramref name="timeout"/> without an answer (a hung server).
    /// </summary>
    public static string Raw(int port, string commands, TimeSpan timeout)
    {
        using var client = new TcpClient();
        client.Connect(IPAddress.Loopback, port);
        client.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        client.SendTimeout = (int)timeout.TotalMilliseconds;
        NetworkStream stream = client.GetStream();
        stream.Write(Encoding.ASCII.GetBytes(commands + "mn\r\n"));
        var reply = new StringBuilder();
        byte[] buffer = new byte[64 * 1024];
        while (!reply.ToString().EndsWith("MN\r\n", StringComparison.Ordinal))
        {
            int read = stream.Read(buffer);
            if (read == 0)
            {
                break;
            }

            reply.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        string text = reply.ToString();
        return text.EndsWith("MN\r\n", StringComparison.Ordinal) ? text[..^4] : text;
    }

    /// <summary>One statistic from <c>stats</c> (e.g. <c>evictions</c>).</summary>
    public long Stat(string name)
    {
        string stats = Raw("stats\r\n");
        foreach (string line in stats.Split("\r\n"))
        {
            string[] parts = line.Split(' ');
            if (parts.Length == 3 && parts[0] == "STAT" && parts[1] == name)
            {
                return long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"memcached has no statistic '{name}'.");
    }

    public void Dispose() => Kill();

    private string Log
    {
        get
        {
            lock (_log)
            {
                return _log.Length == 0 ? "(no output)" : _log.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The memcached binary to run, when not the one on PATH.</summary>
    public const string BinaryVariable = "SHAREDENTITIES_TEST_MEMCACHED";

    private static string FindBinary()
    {
        if (Environment.GetEnvironmentVariable(BinaryVariable) is { Length: > 0 } configured)
        {
            return File.Exists(configured)
                ? configured
                : throw new InvalidOperationException($"{BinaryVariable} is '{configured}', which is not a file: give the path of a memcached binary, or unset it.");
        }

        IEnumerable<string> directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Concat(["/usr/bin", "/usr/local/bin", "/usr/sbin"]);
        foreach (string directory in directories.Where(d => d.Length > 0))
        {
            string candidate = Path.Combine(directory, "memcached");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            "The memcached binary was not found on PATH. Install it with `apt-get install -y memcached` (the CI script installs it) and run the tests again.");
    }
}
