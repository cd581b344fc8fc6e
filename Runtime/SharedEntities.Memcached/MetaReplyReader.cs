using System.Text;

namespace SharedEntities.Memcached;

/// <summary>What <see cref="MetaReplyReader"/> found at the start of the bytes it was given.</summary>
internal enum MetaReadResult : byte
{
    /// <summary>Not enough bytes yet: call again with more, the unconsumed ones first.</summary>
    NeedMore,

    /// <summary>A line, not interpreted (<see cref="MetaReplyReader.ReadLine"/> only).</summary>
    Line,

    /// <summary>
    /// A reply line with a return code: <see cref="MetaReplyReader.Reply"/> and <see cref="MetaReplyReader.Opaque"/>.
    /// After a <c>VA</c> (<see cref="MetaReplyReader.ValueFollows"/>) the next result is its value block.
    /// </summary>
    Reply,

    /// <summary>The value block of the last <c>VA</c> is through: <see cref="MetaReplyReader.Reply"/> is complete.</summary>
    Value,

    /// <summary><c>MN</c>: the server has answered everything sent before the <c>mn</c>.</summary>
    End,

    /// <summary><c>ERROR</c>, <c>CLIENT_ERROR …</c> or <c>SERVER_ERROR …</c>: an error line, which carries no opaque.</summary>
    ErrorLine,

    /// <summary>The bytes are no meta reply (<see cref="MetaReplyReader.Fault"/> says why): nothing after them can be trusted.</summary>
    Malformed,

    /// <summary>
    /// A value block being read past is not followed by CRLF. Its reply line is long consumed, so the caller, which
    /// knows the request the value answers, names it in the message.
    /// </summary>
    UnterminatedValue,
}

/// <summary>
/// Reads meta replies out of bytes as they arrive: no socket, no deadline, no requests. The caller keeps the bytes
/// and calls <see cref="Read"/> with those not yet consumed; a reply split across reads is simply read again, whole,
/// once the rest has come. Which request a reply answers is the caller's business: a <c>VA</c> line is reported
/// before its value block (<see cref="MetaReadResult.Reply"/>, then <see cref="MetaReadResult.Value"/>), so that a
/// reply that answers nothing is refused before the client waits for, or reads past, its value.
/// </summary>
/// <remarks>
/// A value block up to <see cref="MaxKeptValueLength"/> bytes stays in the caller's bytes (its line is not consumed
/// until the block has fully arrived) and is classified; a longer one cannot be a token, so it is consumed as it
/// arrives and never held whole. Faults read as the rest of a sentence that starts with the server, "memcached at
/// host:port …".
/// </remarks>
internal sealed class MetaReplyReader
{
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

    private static ReadOnlySpan<byte> NonNumericError => "CLIENT_ERROR cannot increment or decrement non-numeric value"u8;

    private Expecting _expecting;
    private MetaReply _reply;
    private uint? _opaque;
    private int _lineLength;
    private long _skipRemaining;
    private string? _fault;
    private bool _nonNumeric;

    private enum Expecting : byte
    {
        Line,
        KeptValue, // the VA line is still at the start of the input, its block after it
        SkippedValue, // _skipRemaining bytes of the block, then its CRLF, are still to come
    }

    /// <summary>The reply of the last <see cref="MetaReadResult.Reply"/> or <see cref="MetaReadResult.Value"/>.</summary>
    public MetaReply Reply => _reply;

    /// <summary>The opaque the last reply echoed (<c>O&lt;n&gt;</c>), if it had one.</summary>
    public uint? Opaque => _opaque;

    /// <summary>
    /// The length of the last line read (without its CRLF): the line is the first bytes of the input given, until the
    /// caller drops what was consumed.
    /// </summary>
    public int LineLength => _lineLength;

    /// <summary>After a <see cref="MetaReadResult.Reply"/>: a value block comes next.</summary>
    public bool ValueFollows => _expecting != Expecting.Line;

    /// <summary>After a <see cref="MetaReadResult.Reply"/>: the value block will be read past, not kept.</summary>
    public bool SkipsValue => _expecting == Expecting.SkippedValue;

    /// <summary>After an <see cref="MetaReadResult.ErrorLine"/>: it is memcached's refusal to increment a value that is not a number.</summary>
    public bool IsNonNumericError => _nonNumeric;

    /// <summary>After <see cref="MetaReadResult.Malformed"/>: what the server sent, and why it is refused.</summary>
    public string? Fault => _fault;

    /// <summary>Forgets a value block partly read (a new exchange starts on a clean stream).</summary>
    public void Reset() => _expecting = Expecting.Line;

    /// <summary>
    /// Reads the next reply, or the next part of one, from <paramref name="input"/>. <paramref name="consumed"/> bytes
    /// are done with, whatever the result (even <see cref="MetaReadResult.NeedMore"/>, while a value is read past).
    /// </summary>
    public MetaReadResult Read(ReadOnlySpan<byte> input, out int consumed)
    {
        if (_expecting == Expecting.KeptValue)
        {
            return ReadKeptValue(input, out consumed);
        }

        if (_expecting == Expecting.SkippedValue)
        {
            return SkipValue(input, out consumed);
        }

        MetaReadResult read = ReadLine(input, out int lineConsumed);
        consumed = 0;
        if (read != MetaReadResult.Line)
        {
            return read;
        }

        ReadOnlySpan<byte> line = input[.._lineLength];
        _nonNumeric = false;
        _opaque = null;
        MetaStatus? code = line.Length >= 2 && (line.Length == 2 || line[2] == (byte)' ') ? ParseStatus(line[..2]) : null;
        if (code is null && line.SequenceEqual("MN"u8))
        {
            consumed = lineConsumed;
            return MetaReadResult.End;
        }

        if (code is null && IsErrorLine(line))
        {
            _nonNumeric = line.SequenceEqual(NonNumericError);
            consumed = lineConsumed;
            return MetaReadResult.ErrorLine;
        }

        if (code is not { } status)
        {
            return Malformed(line, "it does not start with a return code this client knows");
        }

        var reply = new MetaReply(status);
        int valueLength = -1;
        ReadOnlySpan<byte> rest = line[2..];
        while (!rest.IsEmpty)
        {
            rest = rest[1..];
            int space = rest.IndexOf((byte)' ');
            ReadOnlySpan<byte> token = space < 0 ? rest : rest[..space];
            rest = space < 0 ? default : rest[space..];
            if (token.IsEmpty)
            {
                return Malformed(line, "it has an empty token");
            }

            if (status == MetaStatus.Value && valueLength < 0)
            {
                if (!TryParseNumber(token, out ulong size) || size > MaxValueLength)
                {
                    return Malformed(line, $"the value size is not a number up to {MaxValueLength}");
                }

                valueLength = (int)size;
                continue;
            }

            switch (token[0])
            {
                case (byte)'O':
                    if (!TryParseNumber(token[1..], out ulong o) || o > uint.MaxValue)
                    {
                        return Malformed(line, "its opaque is not one this client sends");
                    }

                    _opaque = (uint)o;
                    break;
                case (byte)'c':
                    if (!TryParseNumber(token[1..], out ulong cas))
                    {
                        return Malformed(line, "its CAS is not a number");
                    }

                    reply.Cas = cas;
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
            return Malformed(line, "a VA reply has no value size");
        }

        if (status == MetaStatus.Value)
        {
            reply.ValueLength = valueLength;
            if (valueLength > MaxKeptValueLength)
            {
                // Too long to be a token, yet well framed: read past it as it arrives.
                reply.ValueKind = MetaValueKind.Other;
                _skipRemaining = valueLength;
                _expecting = Expecting.SkippedValue;
                consumed = lineConsumed;
            }
            else
            {
                _expecting = Expecting.KeptValue; // the line stays: its block is read with it, and a fault quotes it
            }
        }
        else
        {
            consumed = lineConsumed;
        }

        _reply = reply;
        return MetaReadResult.Reply;
    }

    /// <summary>
    /// Reads one line ending with CRLF, uninterpreted (<see cref="LineLength"/>); <paramref name="consumed"/> counts its
    /// CRLF. A line that is not yet whole is refused once more than <see cref="MaxLineLength"/> bytes of it are in.
    /// </summary>
    public MetaReadResult ReadLine(ReadOnlySpan<byte> input, out int consumed)
    {
        consumed = 0;
        int end = input.IndexOf("\r\n"u8);
        if (end < 0)
        {
            if (input.Length > MaxLineLength)
            {
                _fault = $"sent a reply line longer than {MaxLineLength} bytes ('{Describe(input[..80])}…')";
                return MetaReadResult.Malformed;
            }

            return MetaReadResult.NeedMore;
        }

        if (input[..end].ContainsAny((byte)'\r', (byte)'\n'))
        {
            return Malformed(input[..end], "it contains a bare CR or LF");
        }

        _lineLength = end;
        consumed = end + 2;
        return MetaReadResult.Line;
    }

    /// <summary>The fault of a reply line that was read but cannot be accepted (for the caller's own checks too).</summary>
    public static string MalformedFault(ReadOnlySpan<byte> line, string why) => $"sent a malformed reply '{Describe(line)}': {why}";

    /// <summary>Printable text of a reply for messages: at most 120 characters, control bytes as \xNN.</summary>
    public static string Describe(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder(Math.Min(bytes.Length, 120));
        foreach (byte b in bytes[..Math.Min(bytes.Length, 120)])
        {
            text.Append(b is >= 0x20 and < 0x7F ? (char)b : $"\\x{b:X2}");
        }

        return bytes.Length > 120 ? text.Append('…').ToString() : text.ToString();
    }

    // The input still starts with the VA line: the reply is read when its block and the CRLF after it are all in.
    private MetaReadResult ReadKeptValue(ReadOnlySpan<byte> input, out int consumed)
    {
        consumed = 0;
        int valueLength = _reply.ValueLength;
        int dataStart = _lineLength + 2;
        if (input.Length - dataStart < valueLength + 2)
        {
            return MetaReadResult.NeedMore;
        }

        if (!input.Slice(dataStart + valueLength, 2).SequenceEqual("\r\n"u8))
        {
            return Malformed(input[.._lineLength], $"its value block is not {valueLength} bytes followed by CRLF (truncated or mis-sized)");
        }

        _reply.ValueKind = TokenText.Parse(input.Slice(dataStart, valueLength), out long number);
        _reply.Number = number;
        _expecting = Expecting.Line;
        consumed = dataStart + valueLength + 2;
        return MetaReadResult.Value;
    }

    // Consumes what has arrived of the value block being read past; when it and its CRLF are through, its reply is final.
    private MetaReadResult SkipValue(ReadOnlySpan<byte> input, out int consumed)
    {
        int take = (int)Math.Min(input.Length, _skipRemaining);
        _skipRemaining -= take;
        consumed = take;
        if (_skipRemaining > 0 || input.Length - take < 2)
        {
            return MetaReadResult.NeedMore;
        }

        if (!input.Slice(take, 2).SequenceEqual("\r\n"u8))
        {
            return MetaReadResult.UnterminatedValue;
        }

        consumed = take + 2;
        _expecting = Expecting.Line;
        return MetaReadResult.Value;
    }

    private MetaReadResult Malformed(ReadOnlySpan<byte> line, string why)
    {
        _fault = MalformedFault(line, why);
        return MetaReadResult.Malformed;
    }

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
}
