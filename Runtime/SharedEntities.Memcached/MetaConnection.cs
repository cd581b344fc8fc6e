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
/// <para>This type is the exchange: the handshake, the pipeline's chunks, the deadline, and which request each reply
/// answers. Below it, <see cref="SocketConnector"/> opens the socket, <see cref="SocketTransport"/> carries the bytes
/// (with TLS, through an <see cref="SslStream"/> over the socket), and <see cref="MetaReplyReader"/> reads replies out
/// of them. With authentication the connection's first command is memcached's ASCII authentication, sent with the
/// version handshake.</para>
/// <para>Not thread-safe: one exchange at a time (the node's pool hands a connection to one caller).</para>
/// </remarks>
internal sealed class MetaConnection : IDisposable
{
    /// <summary>Requests are written in chunks of about this many bytes, each ending with <c>mn</c>; at most two chunks are unanswered at a time.</summary>
    internal const int ChunkBytes = 32 * 1024;

    /// <summary>A key that exists only to probe for flags at connect.</summary>
    internal const string ProbeKey = "sharedentities:probe";

    private readonly SocketTransport _transport;
    private bool _receivedAny;
    private string _step = "the version handshake"; // what the connect is doing, for messages
    private readonly byte[] _send = new byte[ChunkBytes + StoreKeyLimit + MetaRequest.MaxOverhead + 8];
    // Never grows: a reply line (MetaReplyReader.MaxLineLength) and a kept value block (MaxKeptValueLength) both fit.
    private readonly byte[] _receive = new byte[64 * 1024];
    private int _receiveStart; // _receive[_receiveStart.._receiveEnd] is what the reader has not consumed yet
    private int _receiveEnd;
    private readonly MetaReplyReader _reader = new();
    private int _valueIndex; // the request whose VA line was read, while its value block is being read
    private uint _valueOpaque;
    private uint _nextOpaque = 1;
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
        _transport = new SocketTransport(socket);
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
            return !_broken && _transport.IsIdle;
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
        Socket socket = await SocketConnector.ConnectAsync(endpoint, timeout, deadline, async, cancellationToken).ConfigureAwait(false);
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
        _transport.Dispose();
        _deadline?.Dispose();
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
            _transport.Abort();
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
            int consumed;
            try
            {
                while (!TryReadLine(out consumed))
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

            lines[i] = MetaReplyReader.Describe(_receive.AsSpan(_receiveStart, _reader.LineLength));
            _receiveStart += consumed;

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
        bool refused = false;
        SslPolicyErrors errors = SslPolicyErrors.None;
        string chain = "";
        SslClientAuthenticationOptions options = security.CreateTlsOptions(Endpoint.Host, (e, c) => (refused, errors, chain) = (true, e, c));
        try
        {
            await _transport.StartTlsAsync(options, deadline, async).ConfigureAwait(false);
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
        _reader.Reset();
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
                $"memcached at {Endpoint.Address} sent '{MetaReplyReader.Describe(_receive.AsSpan(_receiveStart, Math.Min(_receiveEnd - _receiveStart, 80)))}' " +
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

    // Reads replies from the buffer, and applies them, until one is final (true) or more bytes are needed (false);
    // throws on anything that puts the stream out of step. A VA line is matched to its request before its value
    // block is read: a reply that answers nothing is refused without waiting for, or reading past, its value.
    private bool TryReadReply(
        MetaRequest[] requests, int count, int chunkEnd, MetaReply[] replies, uint firstOpaque, ref int next, out bool chunkDone)
    {
        chunkDone = false;
        while (true)
        {
            ReadOnlySpan<byte> input = _receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart);
            MetaReadResult read = _reader.Read(input, out int consumed);
            _receiveStart += consumed; // the line read is still input[.._reader.LineLength]
            switch (read)
            {
                case MetaReadResult.NeedMore:
                    return false;

                case MetaReadResult.End:
                    ResolveQuiet(requests, count, next, chunkEnd, replies, answeredOpaque: null);
                    next = chunkEnd;
                    chunkDone = true;
                    return true;

                case MetaReadResult.ErrorLine:
                    if (_reader.IsNonNumericError && next < chunkEnd && requests[next].Command == MetaCommand.Increment)
                    {
                        replies[next] = new MetaReply(MetaStatus.NonNumeric);
                        next++;
                        return true;
                    }

                    throw new MemcachedProtocolException(
                        Endpoint,
                        $"memcached at {Endpoint.Address} answered '{MetaReplyReader.Describe(input[.._reader.LineLength])}'{Pending(requests, next, chunkEnd)}; the connection was closed.");

                case MetaReadResult.Reply:
                    int index = Attribute(input[.._reader.LineLength], requests, count, chunkEnd, firstOpaque, next, out uint echoed);
                    if (!_reader.ValueFollows)
                    {
                        ResolveQuiet(requests, count, next, index, replies, echoed);
                        replies[index] = _reader.Reply;
                        next = index + 1;
                        return true;
                    }

                    _valueIndex = index;
                    _valueOpaque = echoed;
                    if (_reader.SkipsValue)
                    {
                        // Too long to be a token, yet well framed: a value of this key only (written by something other
                        // than this store), not a fault of the server. Read past as it arrives; its CAS lets the key be
                        // replaced. The replies before it are final now.
                        ResolveQuiet(requests, count, next, index, replies, echoed);
                        next = index;
                        return true;
                    }

                    continue; // the value block, read with its line

                case MetaReadResult.Value:
                    ResolveQuiet(requests, count, next, _valueIndex, replies, _valueOpaque);
                    replies[_valueIndex] = _reader.Reply;
                    next = _valueIndex + 1;
                    return true;

                case MetaReadResult.UnterminatedValue:
                    MetaRequest request = requests[_valueIndex];
                    throw new MemcachedProtocolException(
                        Endpoint,
                        $"memcached at {Endpoint.Address} sent a {_reader.Reply.ValueLength}-byte value block for {request.Verb} {request.Key} that is not followed by CRLF " +
                        "(truncated or mis-sized); the connection was closed.");

                default:
                    throw new MemcachedProtocolException(Endpoint, $"memcached at {Endpoint.Address} {_reader.Fault}; the connection was closed.");
            }
        }
    }

    // The request a reply line answers, by the opaque it echoes. Early 1.6 servers echo no opaque on some codes (EN):
    // such a reply can still be attributed when the first unanswered request always gets a reply, since then nothing
    // else can come first.
    private int Attribute(ReadOnlySpan<byte> line, MetaRequest[] requests, int count, int chunkEnd, uint firstOpaque, int next, out uint echoed)
    {
        echoed = _reader.Opaque ?? (next < chunkEnd && !IsQuiet(requests, next, count)
            ? unchecked(firstOpaque + (uint)next)
            : throw Malformed(line, "it carries no opaque, and the next unanswered request is quiet, so the reply cannot be matched to a request"));

        int index = (int)unchecked(echoed - firstOpaque);
        if (echoed - firstOpaque >= (uint)count || index < next || index >= chunkEnd)
        {
            throw new MemcachedProtocolException(
                Endpoint,
                $"memcached at {Endpoint.Address} answered '{MetaReplyReader.Describe(line)}' with opaque O{echoed}, but the requests awaiting a reply are " +
                $"O{unchecked(firstOpaque + (uint)next)}..O{unchecked(firstOpaque + (uint)chunkEnd - 1)}: the reply belongs to no pending request; the connection was closed.");
        }

        MetaRequest request = requests[index];
        if (!IsValidFor(request.Command, _reader.Reply.Status))
        {
            throw Malformed(line, $"'{MetaReplyReader.Describe(line[..2])}' is not an answer to {request.Verb} (O{echoed})");
        }

        return index;
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

    // One line of the handshake (no meta reply: VERSION, STORED, errors); consumed counts its CRLF.
    private bool TryReadLine(out int consumed) =>
        _reader.ReadLine(_receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart), out consumed) switch
        {
            MetaReadResult.Line => true,
            MetaReadResult.NeedMore => false,
            _ => throw new MemcachedProtocolException(Endpoint, $"memcached at {Endpoint.Address} {_reader.Fault}; the connection was closed."),
        };

    private ValueTask SendAsync(int length, long deadline, bool async) => _transport.SendAsync(_send, length, deadline, async);

    private async ValueTask ReceiveAsync(long deadline, bool async)
    {
        if (_receiveStart > 0)
        {
            _receive.AsSpan(_receiveStart, _receiveEnd - _receiveStart).CopyTo(_receive);
            _receiveEnd -= _receiveStart;
            _receiveStart = 0;
        }

        int received = await _transport.ReceiveAsync(_receive, _receiveEnd, deadline, async).ConfigureAwait(false);

        if (received == 0)
        {
            throw new MemcachedUnavailableException(
                Endpoint,
                _receiveEnd > 0
                    ? $"memcached at {Endpoint.Address} closed the connection in the middle of a reply ('{MetaReplyReader.Describe(_receive.AsSpan(0, Math.Min(_receiveEnd, 80)))}' unfinished)."
                    : $"memcached at {Endpoint.Address} closed the connection before answering.");
        }

        _receiveEnd += received;
        _receivedAny = true;
    }

    private static string Pending(MetaRequest[] requests, int next, int chunkEnd) =>
        next < chunkEnd ? $" to a pipeline whose first unanswered request is {requests[next].Verb} {requests[next].Key}" : "";

    private MemcachedProtocolException Malformed(ReadOnlySpan<byte> line, string why) =>
        new(Endpoint, $"memcached at {Endpoint.Address} {MetaReplyReader.MalformedFault(line, why)}; the connection was closed.");
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
