using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;

namespace SharedEntities.Memcached;

/// <summary>
/// One TCP connection to a memcached server, speaking the meta protocol. It exchanges a whole pipeline at a time:
/// every request carries an opaque (<c>O&lt;n&gt;</c>), chunks of requests end with <c>mn</c>, and a reply is only
/// ever matched to the request whose opaque it echoes. Requests the server may leave unanswered (quiet mode: a miss
/// of <c>mg … q</c>, a success of <c>ms … q</c>) get their implied result when a later reply or the <c>MN</c> shows
/// the server has moved past them.
/// </summary>
/// <remarks>
/// <para>Anything that puts the stream out of step — a malformed, truncated or unattributable reply, an error line, a
/// reset, a timeout — closes the connection and fails the whole exchange: afterwards nothing on the wire can be
/// trusted. A well-framed value that is not a token (too long, or any bytes) is not such a fault: it is what one key
/// holds, read past and reported for that key as <see cref="MetaValueKind.Other"/>. The single error line accepted is
/// memcached's <c>CLIENT_ERROR</c> for incrementing a value that is not a number (the tombstone): it is the answer to
/// that <c>ma</c>, which the connection makes attributable by never sending the request before an <c>ma</c> in quiet
/// mode.</para>
/// <para>With TLS the same bytes go through an <see cref="SslStream"/> over the socket; with authentication the
/// connection's first command is memcached's ASCII authentication, sent with the version handshake.</para>
/// <para>Not thread-safe: one exchange at a time (the node's pool hands a connection to one caller).</para>
/// </remarks>
internal sealed class MetaConnection : IDisposable
{
    /// <summary>Requests are written in chunks of about this many bytes, each ending with <c>mn</c>; at most two chunks are unanswered at a time.</summary>
    internal const int ChunkBytes = 32 * 1024;

    /// <summary>The longest reply line accepted.</summary>
    internal const int MaxLineLength = 4096;

    /// <summary>
    /// The largest value block accepted: memcached's largest item (<c>-I</c> goes up to 1 GB). A larger size cannot be
    /// a value memcached holds, so the reply is taken as garbage and the stream as out of step.
    /// </summary>
    internal const int MaxValueLength = 1024 * 1024 * 1024;

    /// <summary>
    /// Value blocks up to this size are kept and classified; a longer one cannot be a token (at most 20 digits), so it
    /// is read past as it arrives, never held whole, and reported as <see cref="MetaValueKind.Other"/> for its key.
    /// </summary>
    internal const int MaxKeptValueLength = 1024;

    /// <summary>A key that exists only to probe for flags at connect.</summary>
    internal const string ProbeKey = "sharedentities:probe";

    private static ReadOnlySpan<byte> NonNumericError => "CLIENT_ERROR cannot increment or decrement non-numeric value"u8;

    private readonly Socket _socket;
    private SslStream? _tls;
    private bool _receivedAny;
    private string _step = "the version handshake"; // what the connect is doing, for messages
    private readonly byte[] _send = new byte[ChunkBytes + StoreKeyLimit + MetaRequest.MaxOverhead + 8];
    // Never grows: a reply line (MaxLineLength) and a kept value block (MaxKeptValueLength) both fit.
    private readonly byte[] _receive = new byte[64 * 1024];
    private int _receiveStart;
    private int _receiveEnd;
    private bool _skipping; // A value block too long to keep is being read past: _skipRemaining of its bytes are still to come.
    private long _skipRemaining;
    private int _skipIndex;
    private MetaReply _skipReply;
    private uint _nextOpaque = 1;
    private int _receiveTimeout = -1;
    private int _sendTimeout = -1;
    private Timer? _deadline;
    private int _exchange; // Idle, Running, or why it was aborted (TimedOut, Cancelled): set by whoever gets there first.
    private long _abortAfter;
    private bool _broken;

    private const int StoreKeyLimit = 250;
    private const int Idle = 0;
    private const int Running = 1;
    private const int TimedOut = 2;
    private const int Cancelled = 3;

    private MetaConnection(Socket socket, MemcachedEndpoint endpoint)
    {
        _socket = socket;
        Endpoint = endpoint;
        ServerInfo = new MemcachedServerInfo(new Version(0, 0), false, false);
    }

    /// <summary>The server.</summary>
    public MemcachedEndpoint Endpoint { get; }

    /// <summary>The server's version and optional features, read at connect.</summary>
    public MemcachedServerInfo ServerInfo { get; private set; }

    /// <summary>The connection failed or was closed; it must not be used again.</summary>
    public bool IsBroken => _broken;

    /// <summary>The size of the receive buffer (for tests: a value read past does not grow it).</summary>
    internal int ReceiveBufferSize => _receive.Length;

    /// <summary>What this connection last saw of each key (this server run only: see <see cref="CasHints"/>).</summary>
    public CasHints Hints { get; } = new();

    /// <summary>
    /// Whether an idle connection can take a request: not broken, and nothing to read. An idle connection that reads
    /// as ready was closed by the server (a restarted memcached closes every connection) or holds stray bytes; sending
    /// on it would fail the request, so the pool opens a new one instead.
    /// </summary>
    public bool IsReusable
    {
        get
        {
            if (_broken)
            {
                return false;
            }

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

    /// <summary>Connects over plain TCP, without authentication, and reads the server's version and features.</summary>
    public static ValueTask<MetaConnection> OpenAsync(MemcachedEndpoint endpoint, TimeSpan timeout, bool async, CancellationToken cancellationToken) =>
        OpenAsync(endpoint, timeout, ConnectionSecurity.None, async, cancellationToken);

    /// <summary>
    /// Connects, runs the TLS handshake and authenticates as <paramref name="security"/> says, and reads the server's
    /// version and features; all within <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="MemcachedUnavailableException">The server cannot be reached, or did not answer in time.</exception>
    /// <exception cref="MemcachedTlsException">The TLS handshake failed (an untrusted certificate, a server without TLS).</exception>
    /// <exception cref="MemcachedAuthenticationException">The server refused the credentials, or demands some.</exception>
    /// <exception cref="MemcachedProtocolException">The server is not a memcached that speaks the meta protocol.</exception>
    public static async ValueTask<MetaConnection> OpenAsync(
        MemcachedEndpoint endpoint, TimeSpan timeout, ConnectionSecurity security, bool async, CancellationToken cancellationToken)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        Socket socket = await ConnectAsync(endpoint, timeout, deadline, async, cancellationToken).ConfigureAwait(false);
        var connection = new MetaConnection(socket, endpoint);
        try
        {
            await connection.RunGuardedAsync(
                static (c, security, deadline, async) => c.HandshakeAsync(security, deadline, async),
                security,
                timeout,
                deadline,
                requests: null,
                count: 0,
                async,
                cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends <paramref name="count"/> requests pipelined and fills <paramref name="replies"/> in the same order.
    /// <paramref name="party"/>, if given, may rewrite the requests from this connection's <see cref="Hints"/> before
    /// they are sent, and is handed each reply as soon as it is read, while later ones are still on their way.
    /// </summary>
    /// <remarks>
    /// If the exchange fails, the replies handed to <paramref name="party"/> before the failure were handed over, the
    /// rest never will be, and the exception tells the caller so.
    /// </remarks>
    /// <exception cref="MemcachedUnavailableException">The connection failed or timed out (it is now closed).</exception>
    /// <exception cref="MemcachedProtocolException">The server's reply was unacceptable (the connection is now closed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (the connection is now closed).</exception>
    public ValueTask ExchangeAsync(
        MetaRequest[] requests, int count, MetaReply[] replies, IExchangeParty? party, TimeSpan timeout, bool async, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, requests.Length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, replies.Length);
        ObjectDisposedException.ThrowIf(_broken, this);
        return RunGuardedAsync(
            static (c, state, deadline, async) => c.ExchangeCoreAsync(state.requests, state.count, state.replies, state.party, deadline, async),
            (requests, count, replies, party),
            timeout,
            Environment.TickCount64 + (long)timeout.TotalMilliseconds,
            requests,
            count,
            async,
            cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _broken = true;
        _tls?.Dispose();
        _socket.Dispose();
        _deadline?.Dispose();
    }

    private static async ValueTask<Socket> ConnectAsync(MemcachedEndpoint endpoint, TimeSpan timeout, long deadline, bool async, CancellationToken cancellationToken)
    {
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(endpoint.Host, out IPAddress? address) ? [address]
                : async ? await Dns.GetHostAddressesAsync(endpoint.Host, cancellationToken).ConfigureAwait(false)
                : Dns.GetHostAddresses(endpoint.Host);
        }
        catch (SocketException ex)
        {
            throw new MemcachedUnavailableException(endpoint, $"Cannot resolve the memcached host '{endpoint.Host}': {ex.Message}", ex);
        }

        Exception? last = null;
        foreach (IPAddress address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                long remaining = deadline - Environment.TickCount64;
                if (remaining <= 0)
                {
                    throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.");
                }

                if (async)
                {
                    using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeoutSource.CancelAfter(TimeSpan.FromMilliseconds(remaining));
                    try
                    {
                        await socket.ConnectAsync(address, endpoint.Port, timeoutSource.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.");
                    }
                }
                else if (OperatingSystem.IsLinux())
                {
                    // Linux bounds a blocking connect by the send timeout. The socket stays blocking, so the
                    // synchronous path's calls go straight to the kernel (.NET serves a socket that was ever made
                    // non-blocking through its asynchronous engine, which costs thread hops).
                    socket.SendTimeout = (int)remaining;
                    try
                    {
                        socket.Connect(address, endpoint.Port);
                    }
                    catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock or SocketError.InProgress)
                    {
                        throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.", ex);
                    }
                }
                else
                {
                    ConnectWithTimeout(socket, new IPEndPoint(address, endpoint.Port), (int)remaining, endpoint, timeout);
                }

                return socket;
            }
            catch (Exception ex) when (ex is SocketException or MemcachedTimeoutException)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last as MemcachedTimeoutException
            ?? new MemcachedUnavailableException(endpoint, $"Cannot connect to memcached at {endpoint.Address}: {last?.Message ?? "the host has no address"}", last);
    }

    // Socket.Connect has no timeout: connect non-blocking and wait for writability.
    private static void ConnectWithTimeout(Socket socket, IPEndPoint target, int timeoutMs, MemcachedEndpoint endpoint, TimeSpan timeout)
    {
        socket.Blocking = false;
        try
        {
            socket.Connect(target);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            if (!socket.Poll(checked(timeoutMs * 1000), SelectMode.SelectWrite))
            {
                throw new MemcachedTimeoutException(endpoint, $"Connecting to memcached at {endpoint.Address} took longer than {timeout.TotalMilliseconds:0} ms.");
            }

            int error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != 0)
            {
                throw new SocketException(error);
            }
        }

        socket.Blocking = true;
    }

    // Runs one exchange under the deadline and cancellation, and turns every failure into one of the documented
    // exceptions; any failure breaks the connection. The synchronous path bounds each blocking call by the socket's
    // timeouts. The asynchronous path passes no token to the socket (a cancellable token costs a registration per
    // call): a timer, or the caller's token, aborts the exchange by closing the socket, which fails the pending call.
    private async ValueTask RunGuardedAsync<TState>(
        Func<MetaConnection, TState, long, bool, ValueTask> body,
        TState state,
        TimeSpan timeout,
        long deadline,
        MetaRequest[]? requests,
        int count,
        bool async,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        CancellationTokenRegistration registration = default;
        if (async)
        {
            Volatile.Write(ref _abortAfter, deadline);
            Volatile.Write(ref _exchange, Running);
            _deadline ??= new Timer(static c => ((MetaConnection)c!).OnDeadline(), this, Timeout.Infinite, Timeout.Infinite);
            _deadline.Change(timeout, Timeout.InfiniteTimeSpan);
            if (cancellationToken.CanBeCanceled)
            {
                registration = cancellationToken.UnsafeRegister(static c => ((MetaConnection)c!).Abort(Cancelled), this);
            }
        }

        bool failed = true; // Until the body completes: any exception, even one not caught here, breaks the connection.
        try
        {
            await body(this, state, deadline, async).ConfigureAwait(false);
            failed = false;
        }
        catch (MemcachedException) when (Volatile.Read(ref _exchange) is not (TimedOut or Cancelled))
        {
            throw;
        }
        catch (Exception ex) when (ex is MemcachedException or SocketException or IOException or ObjectDisposedException or OperationCanceledException or AuthenticationException)
        {
            string what = requests is null ? _step
                : count == 1 ? $"1 request ({requests[0].Verb} {requests[0].Key})"
                : $"{count} pipelined requests";
            int aborted = Volatile.Read(ref _exchange);
            if (aborted == Cancelled || cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException($"Cancelled during {what} with memcached at {Endpoint.Address}; the connection was closed.", ex, cancellationToken);
            }

            if (aborted == TimedOut || IsSocketTimeout(ex))
            {
                throw new MemcachedTimeoutException(
                    Endpoint, $"memcached at {Endpoint.Address} did not answer {what} within {timeout.TotalMilliseconds:0} ms; the connection was closed.", ex);
            }

            throw new MemcachedUnavailableException(
                Endpoint, $"The connection to memcached at {Endpoint.Address} failed during {what}: {ex.Message}", ex);
        }
        finally
        {
            if (async)
            {
                _deadline!.Change(Timeout.Infinite, Timeout.Infinite);
                await registration.DisposeAsync().ConfigureAwait(false);

                // An abort that raced with the end of a successful exchange leaves its result standing, the socket gone.
                failed |= Interlocked.Exchange(ref _exchange, Idle) != Running;
            }

            if (failed)
            {
                Dispose();
            }
        }
    }

    // A timer callback already queued when an exchange ended can run during the next one: it only aborts an
    // exchange whose own deadline has passed (timers do not fire early; the slack covers the clock's granularity).
    private void OnDeadline()
    {
        if (Environment.TickCount64 + 5 >= Volatile.Read(ref _abortAfter))
        {
            Abort(TimedOut);
        }
    }

    private void Abort(int reason)
    {
        if (Interlocked.CompareExchange(ref _exchange, reason, Running) == Running)
        {
            _broken = true;
            _socket.Dispose();
        }
    }

    private async ValueTask HandshakeAsync(ConnectionSecurity security, long deadline, bool async)
    {
        if (security.UsesTls)
        {
            await AuthenticateTlsAsync(security, deadline, async).ConfigureAwait(false);
        }

        // Authentication must come first (memcached answers anything else 'CLIENT_ERROR unauthenticated' until it has
        // succeeded); the version, then one probe per optional flag: an older server answers CLIENT_ERROR to a flag it
        // lacks. None is quiet, so each gets exactly one reply, in order, and all go in one round trip.
        _step = security.Authenticates ? "authentication and the version handshake" : "the version handshake";
        int length = security.Authenticates ? security.WriteAuthentication(_send) : 0;
        length += Encoding.ASCII.GetBytes($"version\r\nmg {ProbeKey} E1 O1\r\nmd {ProbeKey} x O2\r\nmn\r\n", _send.AsSpan(length));
        try
        {
            await SendAsync(length, deadline, async).ConfigureAwait(false);
        }
        finally
        {
            _send.AsSpan(0, length).Clear(); // the password does not linger in the buffer
        }

        int first = security.Authenticates ? 1 : 0;
        string[] lines = new string[first + 4];
        for (int i = 0; i < lines.Length; i++)
        {
            Range line;
            try
            {
                while (!TryReadLine(out line))
                {
                    await ReceiveAsync(deadline, async).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (i == 0 && !security.UsesTls && IsRefusalOfPlainText(ex))
            {
                throw new MemcachedUnavailableException(
                    Endpoint,
                    $"memcached at {Endpoint.Address} closed the connection without answering {_step} ({Innermost(ex).Message}). " +
                    "A memcached that requires TLS (started with -Z) does this to a plain connection: set MemcachedClientOptions.Tls.",
                    ex);
            }

            lines[i] = Describe(_receive.AsSpan(line));
            _receiveStart = line.End.Value + 2;

            // A refusal is the only line that comes: memcached answers nothing more on that connection.
            if (i == 0)
            {
                CheckAuthentication(lines[0], security);
            }
        }

        lines = lines[first..];
        if (!lines[0].StartsWith("VERSION ", StringComparison.Ordinal) || MemcachedServerInfo.ParseVersion(lines[0][8..]) is not { } version)
        {
            throw new MemcachedProtocolException(
                Endpoint, $"The server at {Endpoint.Address} answered '{lines[0]}' to 'version'; it does not look like memcached.");
        }

        if (version < MemcachedServerInfo.MinimumVersion || lines[3] != "MN")
        {
            throw new MemcachedProtocolException(
                Endpoint, $"memcached at {Endpoint.Address} is version {version}, which does not speak the meta protocol this client needs (1.6 or later).");
        }

        ServerInfo = new MemcachedServerInfo(version, SupportsCasOverride: !IsError(lines[1]), SupportsValueRemoval: !IsError(lines[2]));

        static bool IsError(string line) =>
            line.StartsWith("CLIENT_ERROR", StringComparison.Ordinal) || line.StartsWith("ERROR", StringComparison.Ordinal)
            || line.StartsWith("SERVER_ERROR", StringComparison.Ordinal);
    }

    // The first reply line of a connect: STORED for the authentication, if one was sent; without one, memcached -Y
    // answers everything 'CLIENT_ERROR unauthenticated'. No message holds the credentials.
    private void CheckAuthentication(string line, ConnectionSecurity security)
    {
        if (security.Authenticates)
        {
            if (line == "STORED")
            {
                return;
            }

            if (line.StartsWith("CLIENT_ERROR", StringComparison.Ordinal))
            {
                throw new MemcachedAuthenticationException(
                    Endpoint,
                    $"memcached at {Endpoint.Address} refused the authentication (it answered '{line}'): check Username and Password against " +
                    "the server's auth file (-Y); the connection was closed.");
            }

            throw new MemcachedProtocolException(
                Endpoint, $"The server at {Endpoint.Address} answered '{line}' to the authentication; it does not look like memcached.");
        }

        if (line.StartsWith("CLIENT_ERROR", StringComparison.Ordinal) && line.Contains("unauthenticated", StringComparison.Ordinal))
        {
            throw new MemcachedAuthenticationException(
                Endpoint,
                $"memcached at {Endpoint.Address} requires authentication (it answered '{line}' to 'version'): set Username and Password; " +
                "the connection was closed.");
        }
    }

    // A plain connection to a TLS server: memcached resets it, or sends a TLS alert record and closes.
    private bool IsRefusalOfPlainText(Exception ex)
    {
        bool closed = ex is MemcachedUnavailableException and not MemcachedTimeoutException
            || (ex is SocketException or IOException && !IsSocketTimeout(ex));
        bool tlsRecord = _receiveEnd >= 2 && _receive[0] is 0x15 or 0x16 && _receive[1] == 0x03;
        return closed && (!_receivedAny || tlsRecord) && Volatile.Read(ref _exchange) is not (TimedOut or Cancelled);
    }

    private async ValueTask AuthenticateTlsAsync(ConnectionSecurity security, long deadline, bool async)
    {
        _step = "the TLS handshake";
        var tls = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        _tls = tls;
        bool refused = false;
        SslPolicyErrors errors = SslPolicyErrors.None;
        string chain = "";
        SslClientAuthenticationOptions options = security.CreateTlsOptions(Endpoint.Host, (e, c) => (refused, errors, chain) = (true, e, c));
        try
        {
            if (async)
            {
                await tls.AuthenticateAsClientAsync(options, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                SetTimeout(ref _receiveTimeout, SocketOptionName.ReceiveTimeout, deadline);
                SetTimeout(ref _sendTimeout, SocketOptionName.SendTimeout, deadline);
                tls.AuthenticateAsClient(options);
            }
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException && !IsSocketTimeout(ex) && Volatile.Read(ref _exchange) is not (TimedOut or Cancelled))
        {
            if (refused)
            {
                throw new MemcachedTlsException(
                    Endpoint,
                    $"The TLS certificate of memcached at {Endpoint.Address} was not trusted: {errors}{(chain.Length > 0 ? $" ({chain})" : "")}. " +
                    "Trust its CA or the certificate itself with MemcachedTlsOptions.TrustedCertificates, or decide with a RemoteCertificateValidationCallback; " +
                    "the connection was closed.",
                    errors,
                    ex);
            }

            throw new MemcachedTlsException(
                Endpoint,
                $"The TLS handshake with memcached at {Endpoint.Address} failed: {Innermost(ex).Message} A server that does not speak TLS " +
                "(memcached started without -Z) ends the handshake this way; the connection was closed.",
                SslPolicyErrors.None,
                ex);
        }
    }

    private static Exception Innermost(Exception ex)
    {
        for (int depth = 0; ex.InnerException is { } inner && depth < 8; depth++)
        {
            ex = inner;
        }

        return ex;
    }

    // A socket timeout of the synchronous path, however deeply a stream (NetworkStream, SslStream) wrapped it.
    private static bool IsSocketTimeout(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
            {
                return true;
            }
        }

        return false;
    }

    private async ValueTask ExchangeCoreAsync(MetaRequest[] requests, int count, MetaReply[] replies, IExchangeParty? party, long deadline, bool async)
    {
        party?.BeforeSend(Hints);
        _skipping = false;
        uint firstOpaque = _nextOpaque;
        _nextOpaque = unchecked(_nextOpaque + (uint)count);

        // Keep at most two chunks unanswered: the server always has the next one queued, and neither side's socket
        // buffers can fill up while the other waits (a deadlock for pipelines bigger than those buffers).
        int sent = 0;
        int answered = 0;
        int firstChunkEnd = 0;
        int secondChunkEnd = 0;
        int chunksInFlight = 0;
        while (answered < count)
        {
            if (sent < count && chunksInFlight < 2)
            {
                int end = EncodeChunk(requests, sent, count, firstOpaque, out int length);
                await SendAsync(length, deadline, async).ConfigureAwait(false);
                if (chunksInFlight == 0)
                {
                    firstChunkEnd = end;
                }
                else
                {
                    secondChunkEnd = end;
                }

                chunksInFlight++;
                sent = end;
                continue;
            }

            int next = answered;
            bool chunkDone;
            do
            {
                int from = next;
                while (!TryReadReply(requests, count, firstChunkEnd, replies, firstOpaque, ref next, out chunkDone))
                {
                    await ReceiveAsync(deadline, async).ConfigureAwait(false);
                }

                if (next > from)
                {
                    party?.OnReplies(from, next, Hints); // while the server is still at work on later requests
                }
            }
            while (!chunkDone);

            answered = firstChunkEnd;
            firstChunkEnd = secondChunkEnd;
            chunksInFlight--;
        }

        if (_receiveEnd > _receiveStart)
        {
            // Nothing was asked that these bytes could answer: a server that says more than it was asked cannot be trusted.
            throw new MemcachedProtocolException(
                Endpoint,
                $"memcached at {Endpoint.Address} sent '{Describe(_receive.AsSpan(_receiveStart, Math.Min(_receiveEnd - _receiveStart, 80)))}' " +
                "after the end of the pipeline; the connection was closed.");
        }
    }

    // A request right before an 'ma' is sent loud, so that when the 'ma' answers with an error line (which carries
    // no opaque) every earlier request has already been answered and the error can only be the 'ma''s.
    private static bool IsQuiet(MetaRequest[] requests, int index, int count) =>
        requests[index].Quiet && (index + 1 >= count || requests[index + 1].Command != MetaCommand.Increment);

    private int EncodeChunk(MetaRequest[] requests, int start, int count, uint firstOpaque, out int length)
    {
        int position = 0;
        int i = start;
        while (i < count && position < ChunkBytes)
        {
            position += requests[i].Encode(_send.AsSpan(position), unchecked(firstOpaque + (uint)i), IsQuiet(requests, i, count));
            i++;
        }

        "mn\r\n"u8.CopyTo(_send.AsSpan(position));
        length = position + 4;
        return i;
    }

    // Reads one complete reply from the buffer, if there is one, and applies it. Returns false when more bytes are
    // needed (having changed nothing, except for consuming the bytes of a value block it is reading past); throws on
    // anything that puts the stream out of step.
    private bool TryReadReply(
        MetaRequest[] requests, int count, int chunkEnd, MetaReply[] replies, uint firstOpaque, ref int next, out bool chunkDone)
    {
        chunkDone = false;
        if (_skipping)
        {
            return TrySkipValue(requests, replies, ref next);
        }

        if (!TryReadLine(out Range lineRange))
        {
            return false;
        }

        ReadOnlySpan<byte> line = _receive.AsSpan(lineRange);
        int lineEnd = lineRange.End.Value + 2;
        MetaStatus? code = line.Length >= 2 && (line.Length == 2 || line[2] == (byte)' ') ? ParseStatus(line[..2]) : null;
        if (code is null && line.SequenceEqual("MN"u8))
        {
            ResolveQuiet(requests, count, next, chunkEnd, replies, answeredOpaque: null);
            next = chunkEnd;
            _receiveStart = lineEnd;
            chunkDone = true;
            return true;
        }

        if (code is null && IsErrorLine(line))
        {
            if (line.SequenceEqual(NonNumericError) && next < chunkEnd && requests[next].Command == MetaCommand.Increment)
            {
                replies[next] = new MetaReply(MetaStatus.NonNumeric);
                next++;
                _receiveStart = lineEnd;
                return true;
            }

            throw new MemcachedProtocolException(
                Endpoint,
                $"memcached at {Endpoint.Address} answered '{Describe(line)}'{Pending(requests, next, chunkEnd)}; the connection was closed.");
        }

        MetaStatus status = code ?? throw Malformed(line, "it does not start with a return code this client knows");
        var reply = new MetaReply(status);
        int valueLength = -1;
        uint? opaque = null;
        ReadOnlySpan<byte> rest = line[2..];
        while (!rest.IsEmpty)
        {
            rest = rest[1..];
            int space = rest.IndexOf((byte)' ');
            ReadOnlySpan<byte> token = space < 0 ? rest : rest[..space];
            rest = space < 0 ? default : rest[space..];
            if (token.IsEmpty)
            {
                throw Malformed(line, "it has an empty token");
            }

            if (status == MetaStatus.Value && valueLength < 0)
            {
                if (!TryParseNumber(token, out ulong size) || size > MaxValueLength)
                {
                    throw Malformed(line, $"the value size is not a number up to {MaxValueLength}");
                }

                valueLength = (int)size;
                continue;
            }

            switch (token[0])
            {
                case (byte)'O':
                    opaque = TryParseNumber(token[1..], out ulong o) && o <= uint.MaxValue
                        ? (uint)o
                        : throw Malformed(line, "its opaque is not one this client sends");
                    break;
                case (byte)'c':
                    reply.Cas = TryParseNumber(token[1..], out ulong cas) ? cas : throw Malformed(line, "its CAS is not a number");
                    break;
                case (byte)'W':
                    reply.Won = true;
                    break;
                case (byte)'Z':
                    reply.AlreadyWon = true;
                    break;
                case (byte)'X':
                    reply.Stale = true;
                    break;
                default:
                    break; // Flags we did not ask for are harmless.
            }
        }

        if (status == MetaStatus.Value && valueLength < 0)
        {
            throw Malformed(line, "a VA reply has no value size");
        }

        // Early 1.6 servers echo no opaque on some codes (EN). Such a reply can still be attributed when the first
        // unanswered request always gets a reply: then nothing else can come first.
        uint echoed = opaque ?? (next < chunkEnd && !IsQuiet(requests, next, count)
            ? unchecked(firstOpaque + (uint)next)
            : throw Malformed(line, "it carries no opaque, and the next unanswered request is quiet, so the reply cannot be matched to a request"));

        int index = (int)unchecked(echoed - firstOpaque);
        if (echoed - firstOpaque >= (uint)count || index < next || index >= chunkEnd)
        {
            throw new MemcachedProtocolException(
                Endpoint,
                $"memcached at {Endpoint.Address} answered '{Describe(line)}' with opaque O{echoed}, but the requests awaiting a reply are " +
                $"O{unchecked(firstOpaque + (uint)next)}..O{unchecked(firstOpaque + (uint)chunkEnd - 1)}: the reply belongs to no pending request; the connection was closed.");
        }

        MetaRequest request = requests[index];
        if (!IsValidFor(request.Command, status))
        {
            throw Malformed(line, $"'{Describe(line[..2])}' is not an answer to {request.Verb} (O{echoed})");
        }

        if (status == MetaStatus.Value && valueLength > MaxKeptValueLength)
        {
            // Too long to be a token, yet well framed: a value of this key only (written by something other than this
            // store), not a fault of the server. Read past it as it arrives; its CAS lets the key be replaced.
            reply.ValueLength = valueLength;
            reply.ValueKind = MetaValueKind.Other;
            ResolveQuiet(requests, count, next, index, replies, echoed);
            next = index;
            _skipping = true;
            _skipRemaining = valueLength;
            _skipIndex = index;
            _skipReply = reply;
            _receiveStart = lineEnd;
            return true;
        }

        if (status == MetaStatus.Value)
        {
            int dataStart = lineEnd;
            if (_receiveEnd - dataStart < valueLength + 2)
            {
                return false; // The value block has not fully arrived.
            }

            ReadOnlySpan<byte> data = _receive.AsSpan(dataStart, valueLength);
            if (!_receive.AsSpan(dataStart + valueLength, 2).SequenceEqual("\r\n"u8))
            {
                throw Malformed(line, $"its value block is not {valueLength} bytes followed by CRLF (truncated or mis-sized)");
            }

            reply.ValueLength = valueLength;
            reply.ValueKind = TokenText.Parse(data, out long number);
            reply.Number = number;
            lineEnd = dataStart + valueLength + 2;
        }

        ResolveQuiet(requests, count, next, index, replies, echoed);
        replies[index] = reply;
        next = index + 1;
        _receiveStart = lineEnd;
        return true;
    }

    // Consumes what has arrived of the value block being read past; when it and its CRLF are through, its reply is final.
    private bool TrySkipValue(MetaRequest[] requests, MetaReply[] replies, ref int next)
    {
        int buffered = _receiveEnd - _receiveStart;
        if (_skipRemaining > 0)
        {
            int take = (int)Math.Min(buffered, _skipRemaining);
            _receiveStart += take;
            _skipRemaining -= take;
            buffered -= take;
            if (_skipRemaining > 0)
            {
                return false;
            }
        }

        if (buffered < 2)
        {
            return false;
        }

        if (!_receive.AsSpan(_receiveStart, 2).SequenceEqual("\r\n"u8))
        {
            MetaRequest request = requests[_skipIndex];
            throw new MemcachedProtocolException(
                Endpoint,
                $"memcached at {Endpoint.Address} sent a {_skipReply.ValueLength}-byte value block for {request.Verb} {request.Key} that is not followed by CRLF " +
                "(truncated or mis-sized); the connection was closed.");
        }

        _receiveStart += 2;
        _skipping = false;
        replies[_skipIndex] = _skipReply;
        next = _skipIndex + 1;
        return true;
    }

    // Requests [from, to) were skipped by the server (it answered a later one, or sent MN): legal only for quiet
    // ones, whose silence has a meaning.
    private void ResolveQuiet(MetaRequest[] requests, int count, int from, int to, MetaReply[] replies, uint? answeredOpaque)
    {
        for (int i = from; i < to; i++)
        {
            if (!IsQuiet(requests, i, count))
            {
                throw new MemcachedProtocolException(
                    Endpoint,
                    $"memcached at {Endpoint.Address} sent {(answeredOpaque is { } o ? $"the reply to O{o}" : "MN (the end of the pipeline)")} " +
                    $"without answering request {i + 1} ({requests[i].Verb} {requests[i].Key}), " +
                    "which always gets a reply; the connection was closed.");
            }

            replies[i] = new MetaReply(requests[i].Command == MetaCommand.Get ? MetaStatus.Miss : MetaStatus.Done);
        }
    }

    private static bool IsValidFor(MetaCommand command, MetaStatus status) => command switch
    {
        MetaCommand.Get => status is MetaStatus.Value or MetaStatus.Miss,
        MetaCommand.Set or MetaCommand.Add => status is MetaStatus.Done or MetaStatus.NotStored or MetaStatus.Exists or MetaStatus.NotFound,
        MetaCommand.Increment => status is MetaStatus.Value or MetaStatus.NotFound or MetaStatus.NotStored or MetaStatus.Exists,
        _ => status is MetaStatus.Done or MetaStatus.NotFound or MetaStatus.Exists,
    };

    private static MetaStatus? ParseStatus(ReadOnlySpan<byte> code) => (code[0], code[1]) switch
    {
        ((byte)'V', (byte)'A') => MetaStatus.Value,
        ((byte)'H', (byte)'D') => MetaStatus.Done,
        ((byte)'E', (byte)'N') => MetaStatus.Miss,
        ((byte)'N', (byte)'S') => MetaStatus.NotStored,
        ((byte)'E', (byte)'X') => MetaStatus.Exists,
        ((byte)'N', (byte)'F') => MetaStatus.NotFound,
        _ => null,
    };

    private static bool IsErrorLine(ReadOnlySpan<byte> line) =>
        line.SequenceEqual("ERROR"u8) || line.StartsWith("ERROR "u8) || line.StartsWith("CLIENT_ERROR"u8) || line.StartsWith("SERVER_ERROR"u8);

    // Opaques and CAS values: one pass, no allocation; 1 to 20 digits that fit 64 bits.
    private static bool TryParseNumber(ReadOnlySpan<byte> digits, out ulong value)
    {
        value = 0;
        if (digits.IsEmpty || digits.Length > 20)
        {
            return false;
        }

        foreach (byte b in digits)
        {
            uint digit = (uint)(b - '0');
            if (digit > 9 || value > (ulong.MaxValue - digit) / 10)
            {
                return false;
            }

            value = (value * 10) + digit;
        }

        return true;
    }

    private bool TryReadLine(out Range line)
    {
        ReadOnlySpan<byte> buffered = _receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart);
        int end = buffered.IndexOf("\r\n"u8);
        if (end < 0)
        {
            if (buffered.Length > MaxLineLength)
            {
                throw new MemcachedProtocolException(
                    Endpoint, $"memcached at {Endpoint.Address} sent a reply line longer than {MaxLineLength} bytes ('{Describe(buffered[..80])}…'); the connection was closed.");
            }

            line = default;
            return false;
        }

        line = new Range(_receiveStart, _receiveStart + end);
        if (buffered[..end].ContainsAny((byte)'\r', (byte)'\n'))
        {
            throw Malformed(buffered[..end], "it contains a bare CR or LF");
        }

        return true;
    }

    private async ValueTask SendAsync(int length, long deadline, bool async)
    {
        if (_tls is { } tls)
        {
            if (async)
            {
                await tls.WriteAsync(_send.AsMemory(0, length)).ConfigureAwait(false);
            }
            else
            {
                SetTimeout(ref _sendTimeout, SocketOptionName.SendTimeout, deadline);
                tls.Write(_send, 0, length);
            }

            return;
        }

        if (async)
        {
            int sent = 0;
            while (sent < length)
            {
                sent += await _socket.SendAsync(_send.AsMemory(sent, length - sent), SocketFlags.None).ConfigureAwait(false);
            }

            return;
        }

        int offset = 0;
        while (offset < length)
        {
            SetTimeout(ref _sendTimeout, SocketOptionName.SendTimeout, deadline);
            offset += _socket.Send(_send, offset, length - offset, SocketFlags.None);
        }
    }

    private async ValueTask ReceiveAsync(long deadline, bool async)
    {
        if (_receiveStart > 0)
        {
            _receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart).CopyTo(_receive);
            _receiveEnd -= _receiveStart;
            _receiveStart = 0;
        }

        int received;
        if (async)
        {
            received = _tls is { } tls
                ? await tls.ReadAsync(_receive.AsMemory(_receiveEnd)).ConfigureAwait(false)
                : await _socket.ReceiveAsync(_receive.AsMemory(_receiveEnd), SocketFlags.None).ConfigureAwait(false);
        }
        else
        {
            SetTimeout(ref _receiveTimeout, SocketOptionName.ReceiveTimeout, deadline);
            received = _tls is { } tls
                ? tls.Read(_receive, _receiveEnd, _receive.Length - _receiveEnd)
                : _socket.Receive(_receive, _receiveEnd, _receive.Length - _receiveEnd, SocketFlags.None);
        }

        if (received == 0)
        {
            throw new MemcachedUnavailableException(
                Endpoint,
                _receiveEnd > 0
                    ? $"memcached at {Endpoint.Address} closed the connection in the middle of a reply ('{Describe(_receive.AsSpan(0, Math.Min(_receiveEnd, 80)))}' unfinished)."
                    : $"memcached at {Endpoint.Address} closed the connection before answering.");
        }

        _receiveEnd += received;
        _receivedAny = true;
    }

    // The synchronous path bounds each blocking call by what is left of the exchange's deadline. The option is only
    // set again when it is off by more than an eighth (a system call each time otherwise), so a timeout may come
    // that much early or late.
    private void SetTimeout(ref int current, SocketOptionName option, long deadline)
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

    private static string Pending(MetaRequest[] requests, int next, int chunkEnd) =>
        next < chunkEnd ? $" to a pipeline whose first unanswered request is {requests[next].Verb} {requests[next].Key}" : "";

    private MemcachedProtocolException Malformed(ReadOnlySpan<byte> line, string why) =>
        new(Endpoint, $"memcached at {Endpoint.Address} sent a malformed reply '{Describe(line)}': {why}; the connection was closed.");

    /// <summary>Printable text of a reply for messages: at most 120 characters, control bytes as \xNN.</summary>
    internal static string Describe(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(Math.Min(bytes.Length, 120));
        foreach (byte b in bytes[..Math.Min(bytes.Length, 120)])
        {
            text.Append(b is >= 0x20 and < 0x7F ? (char)b : $"\\x{b:X2}");
        }

        return bytes.Length > 120 ? text.Append('…').ToString() : text.ToString();
    }
}

/// <summary>
/// The caller of an exchange that works with the connection it lands on: it may rewrite the requests from the
/// connection's <see cref="CasHints"/> before they are sent, and takes each reply as soon as it is read, so that its
/// own work on a reply overlaps the server's work on the rest of the pipeline.
/// </summary>
internal interface IExchangeParty
{
    /// <summary>The connection is chosen, the requests not yet sent: they may be rewritten using its hints.</summary>
    void BeforeSend(CasHints hints);

    /// <summary>Replies [<paramref name="from"/>, <paramref name="to"/>) are final: act on them and note what they show.</summary>
    void OnReplies(int from, int to, CasHints hints);
}
