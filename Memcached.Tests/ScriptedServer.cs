using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// A fake memcached on 127.0.0.1 that misbehaves on demand: each accepted connection runs the script with its
/// number (0 for the first), so a test can make connection 0 send garbage and let later ones serve properly.
/// </summary>
public sealed class ScriptedServer : IDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<FakeClient, int, Task> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<FakeClient> _clients = [];
    private readonly Task _acceptLoop;
    private int _connections;

    public ScriptedServer(Func<FakeClient, int, Task> script)
    {
        _script = script;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>The shared items of the well-behaved connections (<see cref="FakeClient.ServeAsync"/>).</summary>
    public ConcurrentDictionary<string, string> Items { get; } = new(StringComparer.Ordinal);

    /// <summary>A script: the handshake, then serve properly.</summary>
    public static async Task ServeWell(FakeClient client)
    {
        await client.HandshakeAsync();
        await client.ServeAsync();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (FakeClient client in _clients)
        {
            client.Dispose();
        }

        try
        {
            _acceptLoop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends with the listener.
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            int number = Interlocked.Increment(ref _connections) - 1;
            var client = new FakeClient(socket, this);
            _clients.Add(client);
            _ = Task.Run(async () =>
            {
                try
                {
                    await _script(client, number);
                }
                catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or EndOfStreamException)
                {
                    // The client went away.
                }
            });
        }
    }
}

/// <summary>One request the fake server read: the command line's words and, for <c>ms</c>, the data block.</summary>
public sealed record FakeRequest(string[] Words, string? Data)
{
    public string Verb => Words[0];

    public string Key => Words.Length > 1 ? Words[1] : "";

    public bool Quiet => Words.Contains("q");

    /// <summary>The opaque flag as sent (<c>O17</c>), or "".</summary>
    public string Opaque => Words.Skip(1).FirstOrDefault(w => w.StartsWith('O')) ?? "";

    public bool HasFlag(string flag) => Words.Skip(2).Contains(flag);

    public string? FlagValue(char flag) => Words.Skip(2).FirstOrDefault(w => w.Length > 1 && w[0] == flag)?[1..];
}

/// <summary>The server side of one connection of a <see cref="ScriptedServer"/>.</summary>
public sealed class FakeClient : IDisposable
{
    private readonly Socket _socket;
    private readonly ScriptedServer _server;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    internal FakeClient(Socket socket, ScriptedServer server)
    {
        _socket = socket;
        _server = server;
    }

    /// <summary>Answers the client's version handshake as memcached 1.6.18 does (no E flag, no md x).</summary>
    public async Task HandshakeAsync(string version = "1.6.18")
    {
        for (int i = 0; i < 4; i++)
        {
            _ = await ReadLineAsync() ?? throw new EndOfStreamException();
        }

        await WriteAsync($"VERSION {version}\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nMN\r\n");
    }

    /// <summary>Reads requests up to and including <c>mn</c>; null if the client closed the connection.</summary>
    public async Task<List<FakeRequest>?> ReadPipelineAsync()
    {
        var requests = new List<FakeRequest>();
        while (true)
        {
            string? line = await ReadLineAsync();
            if (line is null)
            {
                return null;
            }

            string[] words = line.Split(' ');
            if (words[0] == "mn")
            {
                requests.Add(new FakeRequest(words, null));
                return requests;
            }

            string? data = null;
            if (words[0] == "ms")
            {
                int length = int.Parse(words[2], CultureInfo.InvariantCulture);
                data = await ReadBytesAsync(length + 2);
                data = data[..length];
            }

            requests.Add(new FakeRequest(words, data));
        }
    }

    /// <summary>Serves pipelines like a (tiny) memcached until the client disconnects.</summary>
    public async Task ServeAsync()
    {
        while (await ReadPipelineAsync() is { } requests)
        {
            var reply = new StringBuilder();
            foreach (FakeRequest request in requests)
            {
                reply.Append(Answer(request));
            }

            await WriteAsync(reply.ToString());
        }
    }

    /// <summary>What a well-behaved memcached answers to <paramref name="request"/>.</summary>
    public string Answer(FakeRequest request)
    {
        var items = _server.Items;
        string o = request.Opaque;
        switch (request.Verb)
        {
            case "mn":
                return "MN\r\n";
            case "mg":
                if (items.TryGetValue(request.Key, out string? value))
                {
                    return $"VA {value.Length} c1 {o}\r\n{value}\r\n";
                }

                if (request.FlagValue('N') is not null)
                {
                    items[request.Key] = "";
                    return $"VA 0 c1 {o} W\r\n\r\n";
                }

                return request.Quiet ? "" : $"EN {o}\r\n";
            case "ms":
                if (request.HasFlag("ME") && items.ContainsKey(request.Key))
                {
                    return $"NS {o}\r\n";
                }

                items[request.Key] = request.Data!;
                return request.Quiet ? "" : $"HD {o}\r\n";
            case "ma":
                if (!items.TryGetValue(request.Key, out string? number))
                {
                    return $"NF {o}\r\n";
                }

                string next = (ulong.Parse(number, CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture);
                items[request.Key] = next;
                return $"VA {next.Length} c1 {o}\r\n{next}\r\n";
            case "md":
                return items.TryRemove(request.Key, out _) ? (request.Quiet ? "" : $"HD {o}\r\n") : $"NF {o}\r\n";
            default:
                return "ERROR\r\n";
        }
    }

    public async Task WriteAsync(string text) => await _socket.SendAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None);

    /// <summary>Closes the connection with a TCP reset.</summary>
    public void Reset()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    /// <summary>Closes the connection normally (FIN).</summary>
    public void Close() => _socket.Shutdown(SocketShutdown.Both);

    public void Dispose() => _socket.Dispose();

    private async Task<string?> ReadLineAsync()
    {
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                string line = Encoding.ASCII.GetString(_buffer, _start, newline - _start).TrimEnd('\r');
                _start = newline + 1;
                return line;
            }

            if (!await FillAsync())
            {
                return null;
            }
        }
    }

    private async Task<string> ReadBytesAsync(int count)
    {
        while (_end - _start < count)
        {
            if (!await FillAsync())
            {
                throw new EndOfStreamException();
            }
        }

        string text = Encoding.ASCII.GetString(_buffer, _start, count);
        _start += count;
        return text;
    }

    private async Task<bool> FillAsync()
    {
        if (_start > 0)
        {
            Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        int read = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None);
        _end += read;
        return read > 0;
    }
}
