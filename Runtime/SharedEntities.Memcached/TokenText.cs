using System.Buffers.Text;

namespace SharedEntities.Memcached;

/// <summary>
/// How tokens and lifetimes are written on the wire. A token is stored as the unsigned decimal of its 64 bits, so that
/// <c>ma</c> can increment serials whatever their sign; the tombstone (<see cref="long.MaxValue"/>) is stored as the
/// literal <c>DEL</c>, which <c>ma</c> refuses to increment.
/// </summary>
internal static class TokenText
{
    /// <summary>The tombstone on the wire.</summary>
    public static ReadOnlySpan<byte> Tombstone => "DEL"u8;

    // memcached reads a relative TTL above 30 days as an absolute Unix time.
    private const long MaxRelativeTtlSeconds = 60 * 60 * 24 * 30;

    public static int Length(long value) => value == long.MaxValue ? Tombstone.Length : CountDigits((ulong)value);

    public static int Format(long value, Span<byte> destination)
    {
        if (value == long.MaxValue)
        {
            Tombstone.CopyTo(destination);
            return Tombstone.Length;
        }

        Utf8Formatter.TryFormat((ulong)value, destination, out int written);
        return written;
    }

    /// <summary>
    /// Classifies a value block; a number is at most 20 decimal digits that fit 64 bits. memcached may pad a number
    /// with trailing spaces when an increment or decrement shortens it in place (an overflow to 0, say).
    /// </summary>
    public static MetaValueKind Parse(ReadOnlySpan<byte> data, out long value)
    {
        value = 0;
        if (!data.IsEmpty && data[^1] == (byte)' ' && data[0] != (byte)' ')
        {
            data = data.TrimEnd((byte)' ');
        }

        if (data.IsEmpty)
        {
            return MetaValueKind.Empty;
        }

        if (data.SequenceEqual(Tombstone))
        {
            value = long.MaxValue;
            return MetaValueKind.Tombstone;
        }

        if (data.Length <= 20 && !data.ContainsAnyExceptInRange((byte)'0', (byte)'9')
            && Utf8Parser.TryParse(data, out ulong number, out int consumed) && consumed == data.Length)
        {
            value = (long)number;
            return MetaValueKind.Number;
        }

        return MetaValueKind.Other;
    }

    /// <summary>A TTL in whole seconds, rounded up; zero or less means no expiry. Beyond 30 days it becomes an absolute Unix time.</summary>
    public static uint Seconds(TimeSpan ttl, TimeProvider time)
    {
        if (ttl <= TimeSpan.Zero)
        {
            return 0;
        }

        long seconds = (ttl.Ticks + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond;
        if (seconds > MaxRelativeTtlSeconds)
        {
            seconds += time.GetUtcNow().ToUnixTimeSeconds();
        }

        return (uint)Math.Min(seconds, int.MaxValue);
    }

    private static int CountDigits(ulong value)
    {
        int digits = 1;
        while (value >= 10)
        {
            value /= 10;
            digits++;
        }

        return digits;
    }
}
