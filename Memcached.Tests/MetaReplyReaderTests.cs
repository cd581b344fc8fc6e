using System.Text;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// The reply reader on raw bytes, without a socket: every reply kind and every fault, and the same replies however the
/// bytes are cut into reads. (The connection's tests provoke the same faults over TCP.)
/// </summary>
public sealed class MetaReplyReaderTests
{
    [Theory]
    [InlineData("HD O7", "Done")]
    [InlineData("NS O7", "NotStored")]
    [InlineData("EX O7", "Exists")]
    [InlineData("NF O7", "NotFound")]
    [InlineData("EN O7", "Miss")]
    public void A_reply_without_a_value_is_read_whole_with_its_opaque(string line, string status)
    {
        var reader = new MetaReplyReader();
        byte[] input = Bytes(line + "\r\nMN\r\n");
        Assert.Equal(MetaReadResult.Reply, reader.Read(input, out int consumed));
        Assert.Equal(line.Length + 2, consumed);
        Assert.Equal(new MetaReply(Enum.Parse<MetaStatus>(status)), reader.Reply);
        Assert.Equal(7u, reader.Opaque);
        Assert.False(reader.ValueFollows);
        Assert.Equal(line, Encoding.ASCII.GetString(input, 0, reader.LineLength));
    }

    [Fact]
    public void A_code_alone_is_a_reply_without_an_opaque()
    {
        var reader = new MetaReplyReader();
        Assert.Equal(MetaReadResult.Reply, reader.Read(Bytes("EN\r\n"), out int consumed));
        Assert.Equal(4, consumed);
        Assert.Equal(MetaStatus.Miss, reader.Reply.Status);
        Assert.Null(reader.Opaque);
    }

    [Fact]
    public void A_value_reply_gives_its_line_first_and_consumes_it_with_its_block()
    {
        var reader = new MetaReplyReader();
        byte[] input = Bytes("VA 2 c99 O3\r\n42\r\nMN\r\n");
        Assert.Equal(MetaReadResult.Reply, reader.Read(input, out int consumed));
        Assert.Equal(0, consumed); // the line stays until its block is in
        Assert.True(reader.ValueFollows);
        Assert.False(reader.SkipsValue);
        Assert.Equal((MetaStatus.Value, 99ul, 3u), (reader.Reply.Status, reader.Reply.Cas, reader.Opaque!.Value));

        Assert.Equal(MetaReadResult.Value, reader.Read(input, out consumed));
        Assert.Equal("VA 2 c99 O3\r\n42\r\n".Length, consumed);
        Assert.Equal(new MetaReply(MetaStatus.Value, Cas: 99, ValueKind: MetaValueKind.Number, Number: 42, ValueLength: 2), reader.Reply);
        Assert.Equal(3u, reader.Opaque);

        Assert.Equal(MetaReadResult.End, reader.Read(input.AsSpan(consumed), out int end));
        Assert.Equal(4, end);
    }

    [Theory]
    [InlineData("VA 0 c1 W O1", "", "Empty", 0L, true, false, false)]
    [InlineData("VA 0 c1 Z O1", "", "Empty", 0L, false, true, false)]
    [InlineData("VA 1 c1 X W O1", "5", "Number", 5L, true, false, true)]
    [InlineData("VA 3 c1 O1", "DEL", "Tombstone", long.MaxValue, false, false, false)]
    [InlineData("VA 5 c1 O1", "12   ", "Number", 12L, false, false, false)]
    [InlineData("VA 3 c1 O1", " 12", "Other", 0L, false, false, false)]
    [InlineData("VA 2 c1 O1", "-5", "Other", 0L, false, false, false)]
    [InlineData("VA 20 c1 O1", "18446744073709551615", "Number", -1L, false, false, false)]
    [InlineData("VA 21 c1 O1", "123456789012345678901", "Other", 0L, false, false, false)]
    [InlineData("VA 6 c1 O1", "ab\r\ncd", "Other", 0L, false, false, false)]
    public void Flags_and_value_blocks_are_read_as_memcached_sends_them(
        string line, string block, string kind, long number, bool won, bool alreadyWon, bool stale)
    {
        MetaReply reply = ReadOne(line + "\r\n" + block + "\r\n");
        Assert.Equal((MetaStatus.Value, 1ul, Enum.Parse<MetaValueKind>(kind), number, block.Length), (reply.Status, reply.Cas, reply.ValueKind, reply.Number, reply.ValueLength));
        Assert.Equal((won, alreadyWon, stale), (reply.Won, reply.AlreadyWon, reply.Stale));
    }

    [Theory]
    [InlineData("HD k" + "sharedentities:probe" + " O1")] // the key, returned with k
    [InlineData("HD t-1 f0 s5 O1")] // flags not asked for
    [InlineData("HD b O1")]
    public void Flags_this_client_does_not_read_are_ignored(string line)
    {
        MetaReply reply = ReadOne(line + "\r\n");
        Assert.Equal(new MetaReply(MetaStatus.Done), reply);
    }

    [Fact]
    public void MN_ends_a_pipeline()
    {
        var reader = new MetaReplyReader();
        Assert.Equal(MetaReadResult.End, reader.Read(Bytes("MN\r\nHD\r\n"), out int consumed));
        Assert.Equal(4, consumed);
    }

    [Theory]
    [InlineData("ERROR", false)]
    [InlineData("ERROR unknown command", false)]
    [InlineData("CLIENT_ERROR bad command line format", false)]
    [InlineData("CLIENT_ERROR unauthenticated", false)]
    [InlineData("SERVER_ERROR out of memory storing object", false)]
    [InlineData("CLIENT_ERROR cannot increment or decrement non-numeric value", true)]
    public void Error_lines_are_reported_as_such_and_the_refusal_to_increment_is_recognised(string line, bool nonNumeric)
    {
        var reader = new MetaReplyReader();
        byte[] input = Bytes(line + "\r\n");
        Assert.Equal(MetaReadResult.ErrorLine, reader.Read(input, out int consumed));
        Assert.Equal(input.Length, consumed);
        Assert.Equal(line, Encoding.ASCII.GetString(input, 0, reader.LineLength));
        Assert.Equal(nonNumeric, reader.IsNonNumericError);
    }

    [Theory]
    [InlineData("XX what", "sent a malformed reply 'XX what': it does not start with a return code this client knows")]
    [InlineData("ERRORS", "sent a malformed reply 'ERRORS': it does not start with a return code this client knows")]
    [InlineData("HDX O1", "sent a malformed reply 'HDX O1': it does not start with a return code this client knows")]
    [InlineData("H", "sent a malformed reply 'H': it does not start with a return code this client knows")]
    [InlineData("", "sent a malformed reply '': it does not start with a return code this client knows")]
    [InlineData("hd O1", "sent a malformed reply 'hd O1': it does not start with a return code this client knows")]
    [InlineData("HD  O1", "sent a malformed reply 'HD  O1': it has an empty token")]
    [InlineData("HD O1 ", "sent a malformed reply 'HD O1 ': it has an empty token")]
    [InlineData("VA", "sent a malformed reply 'VA': a VA reply has no value size")]
    [InlineData("VA abc O1", "sent a malformed reply 'VA abc O1': the value size is not a number up to 1073741824")]
    [InlineData("VA -1 O1", "sent a malformed reply 'VA -1 O1': the value size is not a number up to 1073741824")]
    [InlineData("VA 1x O1", "sent a malformed reply 'VA 1x O1': the value size is not a number up to 1073741824")]
    [InlineData("VA 1073741825 O1", "sent a malformed reply 'VA 1073741825 O1': the value size is not a number up to 1073741824")]
    [InlineData("VA 123456789012345678901 O1", "sent a malformed reply 'VA 123456789012345678901 O1': the value size is not a number up to 1073741824")]
    [InlineData("HD O", "sent a malformed reply 'HD O': its opaque is not one this client sends")]
    [InlineData("HD O12x", "sent a malformed reply 'HD O12x': its opaque is not one this client sends")]
    [InlineData("HD O4294967296", "sent a malformed reply 'HD O4294967296': its opaque is not one this client sends")]
    [InlineData("HD c O1", "sent a malformed reply 'HD c O1': its CAS is not a number")]
    [InlineData("HD c18446744073709551616 O1", "sent a malformed reply 'HD c18446744073709551616 O1': its CAS is not a number")]
    [InlineData("HD c1\x01 O1", "sent a malformed reply 'HD c1\\x01 O1': its CAS is not a number")]
    public void A_line_that_is_no_meta_reply_is_refused_and_the_fault_quotes_it(string line, string fault)
    {
        var reader = new MetaReplyReader();
        Assert.Equal(MetaReadResult.Malformed, reader.Read(Bytes(line + "\r\n"), out int consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(fault, reader.Fault);
    }

    [Theory]
    [InlineData("VA 1 c1\nO1\r\n5\r\n", "sent a malformed reply 'VA 1 c1\\x0AO1': it contains a bare CR or LF")]
    [InlineData("VA 1 c1\rO1\r\n5\r\n", "sent a malformed reply 'VA 1 c1\\x0DO1': it contains a bare CR or LF")]
    [InlineData("HD\n\r\n", "sent a malformed reply 'HD\\x0A': it contains a bare CR or LF")]
    [InlineData("\rHD\r\n", "sent a malformed reply '\\x0DHD': it contains a bare CR or LF")]
    public void A_bare_CR_or_LF_in_a_line_is_refused(string input, string fault)
    {
        var reader = new MetaReplyReader();
        Assert.Equal(MetaReadResult.Malformed, reader.Read(Bytes(input), out _));
        Assert.Equal(fault, reader.Fault);
    }

    [Fact]
    public void A_line_is_awaited_up_to_the_longest_accepted_and_refused_beyond()
    {
        var reader = new MetaReplyReader();
        byte[] longest = Bytes("HD " + new string('x', MetaReplyReader.MaxLineLength - 3));
        Assert.Equal(MetaReadResult.NeedMore, reader.Read(longest, out int consumed));
        Assert.Equal(0, consumed);

        byte[] tooLong = Bytes(new string('x', MetaReplyReader.MaxLineLength + 1));
        Assert.Equal(MetaReadResult.Malformed, reader.Read(tooLong, out consumed));
        Assert.Equal(0, consumed);
        Assert.Equal($"sent a reply line longer than 4096 bytes ('{new string('x', 80)}…')", reader.Fault);
    }

    [Fact]
    public void An_unfinished_line_and_an_empty_input_need_more()
    {
        var reader = new MetaReplyReader();
        Assert.Equal(MetaReadResult.NeedMore, reader.Read([], out int consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(MetaReadResult.NeedMore, reader.Read(Bytes("HD O1\r"), out consumed));
        Assert.Equal(0, consumed);
    }

    [Theory]
    [InlineData("VA 1 c1 O1\r\n12\r\nMN\r\n", 1)] // longer than said
    [InlineData("VA 5 c1 O1\r\n12\r\nMN\r\nMN\r\n", 5)] // shorter than said: the block runs into the next lines
    [InlineData("VA 2 c1 O1\r\n12\n\rMN\r\n", 2)]
    [InlineData("VA 0 c1 O1\r\nX\r\n", 0)]
    public void A_kept_value_block_not_followed_by_CRLF_is_refused_and_the_fault_quotes_its_line(string input, int length)
    {
        var reader = new MetaReplyReader();
        byte[] bytes = Bytes(input);
        Assert.Equal(MetaReadResult.Reply, reader.Read(bytes, out _));
        Assert.Equal(MetaReadResult.Malformed, reader.Read(bytes, out int consumed));
        Assert.Equal(0, consumed);
        Assert.Equal($"sent a malformed reply 'VA {length} c1 O1': its value block is not {length} bytes followed by CRLF (truncated or mis-sized)", reader.Fault);
    }

    [Fact]
    public void A_kept_value_block_is_awaited_until_its_CRLF_is_in()
    {
        var reader = new MetaReplyReader();
        Assert.Equal(MetaReadResult.Reply, reader.Read(Bytes("VA 2 O1\r\n"), out _));
        Assert.Equal(MetaReadResult.NeedMore, reader.Read(Bytes("VA 2 O1\r\n4"), out int consumed));
        Assert.Equal(MetaReadResult.NeedMore, reader.Read(Bytes("VA 2 O1\r\n42\r"), out consumed));
        Assert.Equal(0, consumed);
        Assert.Equal(MetaReadResult.Value, reader.Read(Bytes("VA 2 O1\r\n42\r\n"), out consumed));
        Assert.Equal(13, consumed);
        Assert.Equal(42, reader.Reply.Number);
    }

    [Theory]
    [InlineData(MetaReplyReader.MaxKeptValueLength, false)]
    [InlineData(MetaReplyReader.MaxKeptValueLength + 1, true)]
    [InlineData(2_000_000, true)]
    public void A_value_longer_than_a_token_can_be_is_read_past_never_kept(int length, bool skipped)
    {
        // The block's bytes look like replies; read past exactly, the next line is the real reply.
        string block = string.Concat(Enumerable.Repeat("HD O2\r\n", (length / 7) + 1))[..length];
        byte[] stream = Bytes($"VA {length} c7 O1\r\n{block}\r\nEN O2\r\nMN\r\n");
        var reader = new MetaReplyReader();
        var buffer = new Buffered();
        int mostHeld = 0;
        var results = new List<string>();
        for (int at = 0; at < stream.Length; at += 1000)
        {
            buffer.Append(stream.AsSpan(at, Math.Min(1000, stream.Length - at)));
            results.AddRange(buffer.ReadAll(reader));
            mostHeld = Math.Max(mostHeld, buffer.Held);
        }

        Assert.Equal(
            [
                Reply("Reply", new MetaReply(MetaStatus.Value, Cas: 7, ValueLength: length, ValueKind: skipped ? MetaValueKind.Other : MetaValueKind.None), 1),
                Reply("Value", new MetaReply(MetaStatus.Value, Cas: 7, ValueLength: length, ValueKind: MetaValueKind.Other), 1),
                Reply("Reply", new MetaReply(MetaStatus.Miss), 2),
                "End",
            ],
            results);
        Assert.Equal(0, buffer.Held);
        if (skipped)
        {
            Assert.True(mostHeld < 1000, $"held {mostHeld} bytes of a value read past");
        }
    }

    [Theory]
    [InlineData("x\r\n")] // one byte too many
    [InlineData("\n\r")]
    [InlineData("ab")]
    public void A_value_read_past_that_is_not_followed_by_CRLF_is_refused(string after)
    {
        var reader = new MetaReplyReader();
        var buffer = new Buffered();
        buffer.Append(Bytes($"VA 2000 c1 O1\r\n{new string('x', 2000)}{after}"));
        Assert.Equal([Reply("Reply", new MetaReply(MetaStatus.Value, Cas: 1, ValueLength: 2000, ValueKind: MetaValueKind.Other), 1), "UnterminatedValue"], buffer.ReadAll(reader));
        Assert.Equal(2000, reader.Reply.ValueLength);
    }

    [Fact]
    public void A_value_read_past_is_awaited_when_only_its_CR_is_in()
    {
        var reader = new MetaReplyReader();
        var buffer = new Buffered();
        buffer.Append(Bytes($"VA 1500 O1\r\n{new string('x', 1500)}\r"));
        Assert.Single(buffer.ReadAll(reader));
        Assert.Equal(1, buffer.Held);
        buffer.Append(Bytes("\n"));
        Assert.Equal(["Value"], buffer.ReadAll(reader).Select(r => r[..5]));
    }

    // A pipeline's replies, of every kind the client reads, with a value read past in the middle.
    private static readonly string Pipeline =
        "HD c5 O1\r\nVA 2 c6 W O2\r\n42\r\nEN O3\r\nVA 4 c8 O4\r\n7   \r\nNS O5\r\nEX O6\r\nNF O7\r\n" +
        $"VA 1500 c9 O8\r\n{new string('v', 700)}\r\n{new string('w', 798)}\r\nVA 0 c10 Z O9\r\n\r\n" +
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\nVA 3 c11 O11\r\nDEL\r\nMN\r\n";

    [Fact]
    public void The_replies_are_the_same_whichever_byte_a_read_ends_at()
    {
        byte[] stream = Bytes(Pipeline);
        List<string> whole = ReadInPieces(stream, stream.Length);
        Assert.Equal(17, whole.Count);
        Assert.Equal("End", whole[^1]);
        Assert.Equal(Reply("Value", new MetaReply(MetaStatus.Value, Cas: 8, ValueKind: MetaValueKind.Number, Number: 7, ValueLength: 4), 4), whole[5]);

        for (int split = 1; split < stream.Length; split++)
        {
            var reader = new MetaReplyReader();
            var buffer = new Buffered();
            buffer.Append(stream.AsSpan(0, split));
            List<string> results = buffer.ReadAll(reader);
            buffer.Append(stream.AsSpan(split));
            results.AddRange(buffer.ReadAll(reader));
            Assert.True(whole.SequenceEqual(results), $"split at byte {split}");
            Assert.Equal(0, buffer.Held);
        }

        Assert.Equal(whole, ReadInPieces(stream, 1));
        Assert.Equal(whole, ReadInPieces(stream, 7));
    }

    [Fact]
    public void Reset_forgets_a_value_partly_read()
    {
        var reader = new MetaReplyReader();
        var buffer = new Buffered();
        buffer.Append(Bytes($"VA 5000 O1\r\n{new string('x', 100)}"));
        buffer.ReadAll(reader);
        reader.Reset();
        Assert.Equal(MetaReadResult.Reply, reader.Read(Bytes("HD O2\r\n"), out _));
    }

    [Fact]
    public void Handshake_lines_are_read_uninterpreted()
    {
        var reader = new MetaReplyReader();
        byte[] input = Bytes("VERSION 1.6.18\r\nSTORED\r\n");
        Assert.Equal(MetaReadResult.Line, reader.ReadLine(input, out int consumed));
        Assert.Equal(16, consumed);
        Assert.Equal("VERSION 1.6.18", Encoding.ASCII.GetString(input, 0, reader.LineLength));
        Assert.Equal(MetaReadResult.NeedMore, reader.ReadLine(Bytes("STORED"), out consumed));
        Assert.Equal(MetaReadResult.Malformed, reader.ReadLine(Bytes("VERSION\n1\r\n"), out _));
        Assert.Equal("sent a malformed reply 'VERSION\\x0A1': it contains a bare CR or LF", reader.Fault);
    }

    [Fact]
    public void Describe_shows_control_bytes_and_cuts_long_text()
    {
        Assert.Equal("a\\x00\\x7F\\x0D\\x0A", MetaReplyReader.Describe(Bytes("a\0\x7f\r\n")));
        Assert.Equal(new string('y', 120) + "…", MetaReplyReader.Describe(Bytes(new string('y', 200))));
    }

    private static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);

    private static MetaReply ReadOne(string input)
    {
        var buffer = new Buffered();
        var reader = new MetaReplyReader();
        buffer.Append(Bytes(input));
        List<string> results = buffer.ReadAll(reader);
        Assert.Equal(0, buffer.Held);
        Assert.NotEmpty(results);
        Assert.DoesNotContain(results, r => r.StartsWith("Malformed", StringComparison.Ordinal));
        return reader.Reply;
    }

    private static List<string> ReadInPieces(byte[] stream, int piece)
    {
        var reader = new MetaReplyReader();
        var buffer = new Buffered();
        var results = new List<string>();
        for (int at = 0; at < stream.Length; at += piece)
        {
            buffer.Append(stream.AsSpan(at, Math.Min(piece, stream.Length - at)));
            results.AddRange(buffer.ReadAll(reader));
        }

        Assert.Equal(0, buffer.Held);
        return results;
    }

    private static string Reply(string result, MetaReply reply, uint opaque) => $"{result} {reply} O{opaque}";

    /// <summary>The caller's side, as the connection does it: bytes arrive at the end, the reader consumes from the front.</summary>
    private sealed class Buffered
    {
        private readonly List<byte> _bytes = [];
        private int _start;

        public int Held => _bytes.Count - _start;

        public void Append(ReadOnlySpan<byte> bytes) => _bytes.AddRange(bytes);

        // Every result up to the next need for bytes, or a fault.
        public List<string> ReadAll(MetaReplyReader reader)
        {
            var results = new List<string>();
            while (true)
            {
                byte[] input = _bytes.GetRange(_start, Held).ToArray();
                MetaReadResult read = reader.Read(input, out int consumed);
                Assert.InRange(consumed, 0, input.Length);
                _start += consumed;
                switch (read)
                {
                    case MetaReadResult.NeedMore:
                        return results;
                    case MetaReadResult.Reply or MetaReadResult.Value:
                        results.Add(Reply(read.ToString(), reader.Reply, reader.Opaque ?? 0));
                        break;
                    case MetaReadResult.ErrorLine:
                        results.Add($"ErrorLine {Encoding.ASCII.GetString(input, 0, reader.LineLength)} nonnumeric={reader.IsNonNumericError}");
                        break;
                    case MetaReadResult.Malformed:
                        results.Add($"Malformed {reader.Fault}");
                        return results;
                    case MetaReadResult.UnterminatedValue:
                        results.Add("UnterminatedValue");
                        return results;
                    default:
                        results.Add(read.ToString());
                        break;
                }
            }
        }
    }
}
