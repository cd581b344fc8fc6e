using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharedEntities.Benchmarks.Memcached;

/// <summary>
/// The 2005 SQLObject recipe's memcached use, ported literally: the classic text protocol, one blocking request per
/// call (python-memcached's <c>get</c> and <c>set</c>). <see cref="Use"/> is its <c>_use</c> (one <c>get</c> per
/// attribute read); <see cref="Change"/> its <c>_change</c> (<c>get</c>, +1, <c>set</c>: the race its author named).
/// </summary>
public sealed class SeedProtocolClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[4096];

    public SeedProtocolClient(int port)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect(IPAddress.Loopback, port);
    }

    /// <summary>Requests sent (each is one round trip).</summary>
    public long RoundTrips { get; private set; }

    /// <summary><c>_use</c>: fetch the serial; a newer one means "sync from the database" (the caller's business).</summary>
    public bool Use(string key, long serial) => Get(key) is { } s && s > serial;

    /// <summary><c>_change</c>: read, add one, write back.</summary>
    public long Change(string key)
    {
        long next = (Get(key) ?? 0) + 1;
        Set(key, next);
        return next;
    }

    public long? Get(string key)
    {
        string reply = Exchange($"get {key}\r\n", "END\r\n");
        if (reply.StartsWith("END", StringComparison.Ordinal))
        {
            return null;
        }

        string[] lines = reply.Split("\r\n");
        return long.Parse(lines[1], CultureInfo.InvariantCulture);
    }

    public void Set(string key, long value)
    {
        string text = value.ToString(CultureInfo.InvariantCulture);
        string reply = Exchange($"set {key} 0 0 {text.Length}\r\n{text}\r\n", "\r\n");
        if (!reply.StartsWith("STORED", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"set {key}: {reply}");
        }
    }

    public void Dispose() => _socket.Dispose();

    private string Exchange(string request, string terminator)
    {
        RoundTrips++;
        _socket.Send(Encoding.ASCII.GetBytes(request));
        int length = 0;
        while (true)
        {
            int read = _socket.Receive(_buffer, length, _buffer.Length - length, SocketFlags.None);
            if (read == 0)
            {
                throw new InvalidOperationException("memcached closed the connection.");
            }

            length += read;
            string text = Encoding.ASCII.GetString(_buffer, 0, length);
            if (text.EndsWith(terminator, StringComparison.Ordinal))
            {
                return text;
            }
        }
    }
}
