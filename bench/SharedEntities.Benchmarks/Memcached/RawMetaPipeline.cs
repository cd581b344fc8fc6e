using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SharedEntities.Benchmarks.Memcached;

/// <summary>
/// The baseline: the least a client can do for a pipelined check — one precomputed buffer of
/// <c>mg &lt;key&gt; v c q O&lt;n&gt;</c> lines and <c>mn</c>, one send, then receive until the reply ends with
/// <c>MN</c>. No encoding, no parsing, no attribution: the box's limit for the same wire traffic.
/// </summary>
public sealed class RawMetaPipeline : IDisposable
{
    private static readonly byte[] End = "MN\r\n"u8.ToArray();
    private readonly Socket _socket;
    private readonly byte[] _request;
    private readonly byte[] _buffer = new byte[1 << 20];

    public RawMetaPipeline(int port, IReadOnlyList<string> keys)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect(IPAddress.Loopback, port);
        var text = new StringBuilder();
        for (int i = 0; i < keys.Count; i++)
        {
            text.Append("mg ").Append(keys[i]).Append(" v c q O").Append(i + 1).Append("\r\n");
        }

        _request = Encoding.ASCII.GetBytes(text.Append("mn\r\n").ToString());
    }

    /// <summary>One pipelined round trip; returns the bytes received.</summary>
    public int Run()
    {
        _socket.Send(_request);
        int received = 0;
        while (received < End.Length || !_buffer.AsSpan(received - End.Length, End.Length).SequenceEqual(End))
        {
            int read = _socket.Receive(_buffer, received, _buffer.Length - received, SocketFlags.None);
            if (read == 0)
            {
                throw new InvalidOperationException("memcached closed the connection.");
            }

            received += read;
        }

        return received;
    }

    /// <summary>The same, asynchronously.</summary>
    public async ValueTask<int> RunAsync()
    {
        await _socket.SendAsync(_request, SocketFlags.None).ConfigureAwait(false);
        int received = 0;
        while (received < End.Length || !_buffer.AsSpan(received - End.Length, End.Length).SequenceEqual(End))
        {
            int read = await _socket.ReceiveAsync(_buffer.AsMemory(received), SocketFlags.None).ConfigureAwait(false);
            if (read == 0)
            {
                throw new InvalidOperationException("memcached closed the connection.");
            }

            received += read;
        }

        return received;
    }

    public void Dispose() => _socket.Dispose();
}
