using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SharedEntities.Protocol;

/// <summary>
/// Turns <c>{prefix}{entity name}:{key}</c> into a key every store accepts, memcached included: at most 250 bytes of
/// printable ASCII with no space. A key made only of <c>[A-Za-z0-9_.:\-`]</c> and short enough is used as it is; any
/// other key (long, Unicode, spaces, control characters) becomes <c>{prefix}~{base64url(SHA-256(utf-8 key))}</c>.
/// The two forms cannot collide: '~' never occurs in a key used as it is.
/// </summary>
public static class StoreKeys
{
    /// <summary>The longest key memcached accepts.</summary>
    public const int MaxKeyLength = 250;

    // A plain key leaves room for the longest prefix we allow and stays readable in memcached tools.
    private const int MaxPlainLength = 200;

    /// <summary>The longest prefix accepted (it is part of every key, hashed or not).</summary>
    public const int MaxPrefixLength = 64;

    /// <summary>Formats an entity key value the way every process must agree on (invariant culture).</summary>
    public static string FormatKeyValue(object key) => key switch
    {
        null => throw new ArgumentNullException(nameof(key)),
        string s => s,
        Guid g => g.ToString("D"),
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => key.ToString() ?? throw new ArgumentException($"The key of type {key.GetType()} formats as null.", nameof(key)),
    };

    /// <summary>Validates a key prefix (e.g. an application name) that all keys of a <see cref="Coherence"/> start with.</summary>
    public static void ValidatePrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (prefix.Length > MaxPrefixLength)
        {
            throw new ArgumentException($"The key prefix is {prefix.Length} characters long; at most {MaxPrefixLength} are allowed.", nameof(prefix));
        }

        foreach (char c in prefix)
        {
            if (!IsPlain(c))
            {
                throw new ArgumentException(
                    $"The key prefix '{prefix}' contains '{c}' (U+{(int)c:X4}); use letters, digits and _ . : - only.",
                    nameof(prefix));
            }
        }
    }

    /// <summary>The store key of one entity.</summary>
    public static string For(string prefix, string entityName, object key)
    {
        ArgumentNullException.ThrowIfNull(entityName);
        string natural = string.Concat(entityName, ":", FormatKeyValue(key));
        if (natural.Length <= MaxPlainLength && IsPlain(natural))
        {
            return prefix + natural;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(natural), hash);
        return string.Concat(prefix, "~", Base64Url.EncodeToString(hash));
    }

    private static bool IsPlain(string s)
    {
        foreach (char c in s)
        {
            if (!IsPlain(c))
            {
                return false;
            }
        }

        return s.Length > 0;
    }

    private static bool IsPlain(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or ':' or '-' or '`';
}
