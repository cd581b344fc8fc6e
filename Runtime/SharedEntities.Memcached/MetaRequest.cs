using System.Buffers.Text;

namespace SharedEntities.Memcached;

/// <summary>The meta commands the client sends.</summary>
internal enum MetaCommand : byte
{
    /// <summary><c>mg &lt;key&gt; v c [N&lt;ttl&gt;]</c>: value and CAS, optionally vivifying a lease placeholder on a miss.</summary>
    Get,

    /// <summary><c>ms &lt;key&gt; &lt;len&gt; T&lt;ttl&gt; [C&lt;cas&gt;] [c]</c>: store, optionally only over the item with that CAS; sent loud, it returns the new CAS.</summary>
    Set,

    /// <summary><c>ms &lt;key&gt; &lt;len&gt; T&lt;ttl&gt; ME [c]</c>: store only if no item exists; sent loud, it returns the new CAS.</summary>
    Add,

    /// <summary><c>ma &lt;key&gt; v c</c>: increment by one, returning the new value.</summary>
    Increment,

    /// <summary><c>md &lt;key&gt; [C&lt;cas&gt;]</c>: delete.</summary>
    Delete,
}

/// <summary>
/// One meta command to send. <see cref="Quiet"/> asks for noreply semantics (<c>q</c>): an <c>mg</c> then stays silent
/// on a miss, an <c>ms</c>/<c>md</c> on success; the connection may still send it loud when that keeps replies
/// attributable (see <see cref="MetaConnection"/>).
/// </summary>
internal readonly record struct MetaRequest(
    MetaCommand Command,
    string Key,
    long Value = 0,
    ulong Cas = 0,
    uint TtlSeconds = 0,
    uint? LeaseTtlSeconds = null,
    bool Quiet = false)
{
    // The longest command line we write besides the key: "ms " + " 20-digit-len" + " T4294967295" + " C18446744073709551615" + " ME c q O4294967295\r\n" + value + "\r\n".
    internal const int MaxOverhead = 128;

    public static MetaRequest Get(string key, bool quiet = true, uint? leaseTtlSeconds = null) =>
        new(MetaCommand.Get, key, LeaseTtlSeconds: leaseTtlSeconds, Quiet: quiet);

    public static MetaRequest Set(string key, long value, uint ttlSeconds, ulong cas = 0, bool quiet = true) =>
        new(MetaCommand.Set, key, value, cas, ttlSeconds, Quiet: quiet);

    public static MetaRequest Add(string key, long value, uint ttlSeconds, bool quiet = true) =>
        new(MetaCommand.Add, key, value, TtlSeconds: ttlSeconds, Quiet: quiet);

    public static MetaRequest Increment(string key) => new(MetaCommand.Increment, key);

    public static MetaRequest Delete(string key, ulong cas = 0, bool quiet = true) => new(MetaCommand.Delete, key, Cas: cas, Quiet: quiet);

    /// <summary>The command as memcached spells it (for messages).</summary>
    public string Verb => Command switch
    {
        MetaCommand.Get => "mg",
        MetaCommand.Set or MetaCommand.Add => "ms",
        MetaCommand.Increment => "ma",
        _ => "md",
    };

    /// <summary>Writes the command (and its data block) with opaque <paramref name="opaque"/>; returns the bytes written.</summary>
    public int Encode(Span<byte> destination, uint opaque, bool quiet)
    {
        var w = new Writer(destination);
        switch (Command)
        {
            case MetaCommand.Get:
                w.Ascii("mg ");
                w.Ascii(Key);
                w.Ascii(" v c");
                if (LeaseTtlSeconds is { } lease)
                {
                    w.Ascii(" N");
                    w.Number(lease);
                }

                break;

            case MetaCommand.Set or MetaCommand.Add:
                w.Ascii("ms ");
                w.Ascii(Key);
                w.Byte((byte)' ');
                w.Number((ulong)TokenText.Length(Value));
                w.Ascii(" T");
                w.Number(TtlSeconds);
                if (Command == MetaCommand.Add)
                {
                    w.Ascii(" ME");
                }
                else if (Cas != 0)
                {
                    w.Ascii(" C");
                    w.Number(Cas);
                }

                break;

            case MetaCommand.Increment:
                w.Ascii("ma ");
                w.Ascii(Key);
                w.Ascii(" v c");
                break;

            case MetaCommand.Delete:
                w.Ascii("md ");
                w.Ascii(Key);
                if (Cas != 0)
                {
                    w.Ascii(" C");
                    w.Number(Cas);
                }

                break;
        }

        if (quiet)
        {
            w.Ascii(" q");
        }
        else if (Command is MetaCommand.Set or MetaCommand.Add)
        {
            w.Ascii(" c"); // the reply then carries the item's new CAS (CasHints)
        }

        w.Ascii(" O");
        w.Number(opaque);
        w.Ascii("\r\n");
        if (Command is MetaCommand.Set or MetaCommand.Add)
        {
            w.Position += TokenText.Format(Value, destination[w.Position..]);
            w.Ascii("\r\n");
        }

        return w.Position;
    }

    private ref struct Writer(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;

        public int Position;

        public void Byte(byte b) => _destination[Position++] = b;

        // Keys are validated as printable ASCII before they get here, so the conversion is exact.
        public void Ascii(string text)
        {
            System.Text.Ascii.FromUtf16(text, _destination[Position..], out int written);
            Position += written;
        }

        public void Number(ulong value)
        {
            Utf8Formatter.TryFormat(value, _destination[Position..], out int written);
            Position += written;
        }
    }
}
