using System.Net.Security;
using System.Net.Sockets;

namespace SharedEntities.Memcached;

/// <summary>
/// The bytes of one <see cref="MetaConnection"/>: its socket, or TLS over it. Each call goes one of two ways. With
/// <c>async</c> it is awaited and bounded by the connection, whose timer closes the socket at the deadline (a
/// cancellable token per call would cost a registration each). Without, it blocks, bounded by the socket's own
/// timeouts, which <see cref="BoundBy"/> sets from what is left of the deadline: the one thing the synchronous path
/// does differently, kept in one place.
/// </summary>
internal sealed class SocketTransport : IDisposable
{
    private readonly Socket _socket;
    private SslStream? _tls;
    private int _receiveTimeout = -1;
    private int _sendTimeout = -1;

    public SocketTransport(Socket socket) => _socket = socket;

    /// <summary>
    /// Nothing waits to be read, and the socket is open. A socket that reads as ready while idle was closed by the
    /// server, or holds bytes nobody asked for.
    /// </summary>
    public bool IsIdle
    {
        get
        {
            try
            {
                return !_socket.Poll(0, SelectMode.SelectRead);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return false;
            }
        }
    }

    /// <summary>Runs the TLS handshake; every byte after it goes through TLS.</summary>
    public async ValueTask StartTlsAsync(SslClientAuthenticationOptions options, long deadline, bool async)
    {
        var tls = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        _tls = tls;
        if (async)
        {
            await tls.AuthenticateAsClientAsync(options, CancellationToken.None).ConfigureAwait(false);
        }
        else
        {
            BoundBy(deadline, ref _receiveTimeout, SocketOptionName.ReceiveTimeout);
            BoundBy(deadline, ref _sendTimeout, SocketOptionName.SendTimeout);
            tls.AuthenticateAsClient(options);
        }
    }

    /// <summary>Sends <paramref name="buffer"/>[0..<paramref name="length"/>], all of it.</summary>
    public async ValueTask SendAsync(byte[] buffer, int length, long deadline, bool async)
    {
        if (_tls is { } tls)
        {
            if (async)
            {
                await tls.WriteAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            }
            else
            {
                BoundBy(deadline, ref _sendTimeout, SocketOptionName.SendTimeout);
                tls.Write(buffer, 0, length);
            }

            return;
        }

        int sent = 0;
        while (sent < length)
        {
            if (async)
            {
                sent += await _socket.SendAsync(buffer.AsMemory(sent, length - sent), SocketFlags.None).ConfigureAwait(false);
            }
            else
            {
                BoundBy(deadline, ref _sendTimeout, SocketOptionName.SendTimeout);
                sent += _socket.Send(buffer, sent, length - sent, SocketFlags.None);
            }
        }
    }

    /// <summary>Reads what has arrived into <paramref name="buffer"/> from <paramref name="offset"/> on, waiting for at least a byte; 0 when the server closed.</summary>
    public async ValueTask<int> ReceiveAsync(byte[] buffer, int offset, long deadline, bool async)
    {
        if (async)
        {
            return _tls is { } tls
                ? await tls.ReadAsync(buffer.AsMemory(offset)).ConfigureAwait(false)
                : await _socket.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None).ConfigureAwait(false);
        }

        BoundBy(deadline, ref _receiveTimeout, SocketOptionName.ReceiveTimeout);
        return _tls is { } blocking
            ? blocking.Read(buffer, offset, buffer.Length - offset)
            : _socket.Receive(buffer, offset, buffer.Length - offset, SocketFlags.None);
    }

    /// <summary>Closes the socket under a call in progress, from any thread: the call fails.</summary>
    public void Abort() => _socket.Dispose();

    /// <inheritdoc/>
    public void Dispose()
    {
        _tls?.Dispose();
        _socket.Dispose();
    }

    // A blocking call may take what is left of the deadline. The option is only set again when it is off by more than
    // an eighth (a system call each time otherwise), so a timeout may come that much early or late.
    private void BoundBy(long deadline, ref int current, SocketOptionName option)
    {
        long remaining = deadline - Environment.TickCount64;
        if (remaining <= 0)
        {
            throw new SocketException((int)SocketError.TimedOut);
        }

        int wanted = (int)Math.Min(remaining, int.MaxValue);
        if (current <= 0 || Math.Abs(wanted - current) > current / 8)
        {
            _socket.SetSocketOption(SocketOptionLevel.Socket, option, wanted);
            current = wanted;
        }
    }
}
