using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SharedEntities.Protocol;

/// <summary>
/// Turns <c>{prefix}{entity name}:{key}</c> into a key every store accepts, memcached included: at most 250 bytes of
/// printable ASCII with no space, whatever the prefix, the entity name and the key. A key made only of
/// <c>[A-Za-z0-9_.:\-`]</c> that fits (with its prefix) in 250 bytes is used as it is, unless every key is to be
/// hashed; any other key (long, Unicode, spaces, control characters) becomes <c>{prefix}~{base64url(hash)}</c>, the
/// hash being SHA-256 of the UTF-8 key, or HMAC-SHA-256 with a secret. The two forms cannot collide: '~' never occurs
/// in a key used as it is.
/// </summary>
public static class StoreKeys
{
    /// <summary>The longest key memcached accepts.</summary>
    public const int MaxKeyLength = 250;

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

        for (int i = 0; i < prefix.Length; i++)
        {
            char c = prefix[i];
            if (!IsPlain(c))
            {
                // The prefix is shown with its unusual characters escaped: a raw CR, LF or NUL would break the message.
                throw new ArgumentException(
                    $"The key prefix \"{Escape(prefix)}\" contains U+{(int)c:X4} at position {i}; use letters, digits and _ . : - only.",
                    nameof(prefix));
            }
        }
    }

    /// <summary>The store key of one entity.</summary>
    public static string For(string prefix, string entityName, object key) => For(prefix, entityName, key, hashAll: false, secret: null);

    /// <summary>
    /// The store key of one entity; with <paramref name="hashAll"/>, every key is hashed (so that no key value appears
    /// in the store), with HMAC-SHA-256 under <paramref name="secret"/> when one is given.
    /// </summary>
    public static string For(string prefix, string entityName, object key, bool hashAll, ReadOnlySpan<byte> secret)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(entityName);
        string natural = string.Concat(entityName, ":", FormatKeyValue(key));
        if (!hashAll && prefix.Length + natural.Length <= MaxKeyLength && IsPlain(natural))
        {
            return prefix + natural;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        byte[] bytes = Encoding.UTF8.GetBytes(natural);
        if (secret.IsEmpty)
        {
            SHA256.HashData(bytes, hash);
        }
        else
        {
            HMACSHA256.HashData(secret, bytes, hash);
        }

        return string.Concat(prefix, "~", Base64Url.EncodeToString(hash));
    }

    /// <summary>
    /// How a store key appears in log messages when keys are not to be logged: a short reference (the first 12
    /// characters of base64url(SHA-256(key))) that is the same in every process, so that lines about one entity can
    /// still be matched.
    /// </summary>
    public static string Reference(string storeKey)
    {
        ArgumentNullException.ThrowIfNull(storeKey);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(storeKey), hash);
        return string.Concat("key#", Base64Url.EncodeToString(hash[..9]));
    }

    /// <summary><paramref name="text"/> with control and non-ASCII characters written as <c>\uXXXX</c>.</summary>
    internal static string Escape(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            _ = c is >= ' ' and <= '~' ? builder.Append(c) : builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
        }

        return builder.ToString();
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
