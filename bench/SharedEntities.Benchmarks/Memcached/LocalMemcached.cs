using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SharedEntities.Benchmarks.Memcached;

/// <summary>A memcached of the benchmark's own on a free loopback port; stopped (by its process id) on dispose.</summary>
public sealed class LocalMemcached : IDisposable
{
    private readonly Process _process;

    /// <param name="threads">memcached's worker threads (<c>-t</c>).</param>
    /// <param name="cpu">If given, memcached runs on this CPU only (<c>taskset</c>, which then execs memcached under the same process id).</param>
    public LocalMemcached(int threads = 2, int? cpu = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var start = new ProcessStartInfo(cpu is null ? "memcached" : CpuPinning.Taskset) { UseShellExecute = false, RedirectStandardError = true };
        if (cpu is { } pinned)
        {
            foreach (string argument in new[] { "-c", pinned.ToString(CultureInfo.InvariantCulture), "memcached" })
            {
                start.ArgumentList.Add(argument);
            }
        }

        if (Environment.UserName == "root")
        {
            start.ArgumentList.Add("-u");
            start.ArgumentList.Add("nobody");
        }

        foreach (string argument in new[] { "-l", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "0", "-t", threads.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException("memcached did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("memcached is not installed: run `apt-get install -y memcached`.", ex);
        }

        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (clock.Elapsed < TimeSpan.FromSeconds(10) && !_process.HasExited)
            {
                Thread.Sleep(10);
            }
        }
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
