using System.Globalization;
using Microsoft.Data.Sqlite;
using SharedEntities.Memcached.Tests;

namespace SharedEntities.FaultHistory;

// Linked into FaultHistory.Tests: the test tampers with the store from outside, the workers from inside.

/// <summary>
/// The token encoding, as Runtime/SharedEntities/Protocol/SharedToken.cs defines it. The faults write tokens behind
/// the runtime's back, so the encoding is written here once, independently of the runtime (a test compares the two).
/// </summary>
internal static class TokenEncoding
{
    /// <summary>The token of a committed <paramref name="version"/>.</summary>
    public static long Clean(long version) => (4 * version) + 1;
}

/// <summary>Writes behind the runtime's back into the stores of a run: evictions, deletions, tokens set ahead.</summary>
internal static class StoreTamper
{
    /// <summary>The store key of counter <paramref name="id"/> (no key prefix; the workers check that they agree).</summary>
    public static string KeyOf(int id) => "Counter:" + id.ToString(CultureInfo.InvariantCulture);

    /// <summary>memcached <c>md</c>: whether the key was there.</summary>
    public static bool MemcachedDelete(int port, string key, TimeSpan timeout) =>
        MemcachedServer.Raw(port, $"md {key}\r\n", timeout).StartsWith("HD", StringComparison.Ordinal);

    /// <summary>memcached <c>mg … v</c>: the item's value (empty for a lease placeholder), or <see langword="null"/> for a miss.</summary>
    public static string? MemcachedValue(int port, string key, TimeSpan timeout)
    {
        string[] lines = MemcachedServer.Raw(port, $"mg {key} v\r\n", timeout).Split("\r\n");
        return lines[0].StartsWith("VA ", StringComparison.Ordinal) && lines.Length > 1 ? lines[1] : null;
    }

    /// <summary>memcached <c>ms</c> of a raw value with a TTL in seconds (as the runtime writes its tokens: ASCII decimal).</summary>
    public static void MemcachedSet(int port, string key, long value, int ttlSeconds, TimeSpan timeout)
    {
        string text = value.ToString(CultureInfo.InvariantCulture);
        string reply = MemcachedServer.Raw(port, $"ms {key} {text.Length} T{ttlSeconds}\r\n{text}\r\n", timeout);
        if (!reply.StartsWith("HD", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"memcached refused ms {key}: {reply}");
        }
    }

    /// <summary>memcached <c>flush_all</c>: every item invalid at once.</summary>
    public static void MemcachedFlush(int port, TimeSpan timeout)
    {
        string reply = MemcachedServer.Raw(port, "flush_all\r\n", timeout);
        if (!reply.StartsWith("OK", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"memcached refused flush_all: {reply}");
        }
    }

    /// <summary>Deletes the embedded store's rows of <paramref name="keys"/> (every row when null); returns how many went.</summary>
    public static int SqliteDelete(string file, IReadOnlyCollection<string>? keys, TimeSpan busyTimeout)
    {
        using SqliteConnection connection = OpenSqlite(file, busyTimeout);
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "DELETE FROM shared_entity_tokens";
        if (keys is not null)
        {
            command.CommandText += " WHERE key IN (" + string.Join(", ", keys.Select((_, i) => "$k" + i.ToString(CultureInfo.InvariantCulture))) + ")";
            int i = 0;
            foreach (string key in keys)
            {
                command.Parameters.AddWithValue("$k" + (i++).ToString(CultureInfo.InvariantCulture), key);
            }
        }

        return command.ExecuteNonQuery();
    }

    /// <summary>
    /// Sets the embedded store's item <paramref name="key"/> to <paramref name="value"/>, with a new CAS and an expiry
    /// <paramref name="ttl"/> from now on the system clock (the store's table: key, value, cas, expires_at in Unix
    /// milliseconds, placeholder).
    /// </summary>
    public static void SqliteSet(string file, string key, long value, TimeSpan ttl, TimeSpan busyTimeout)
    {
        using SqliteConnection connection = OpenSqlite(file, busyTimeout);
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText =
            "INSERT INTO shared_entity_tokens (key, value, cas, expires_at, placeholder) VALUES ($key, $value, $cas, $expires, 0) " +
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, cas = excluded.cas, expires_at = excluded.expires_at, placeholder = 0";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$value", value);
        command.Parameters.AddWithValue("$cas", Random.Shared.NextInt64(1, long.MaxValue));
        command.Parameters.AddWithValue("$expires", DateTimeOffset.UtcNow.Add(ttl).ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
    }

    /// <summary>The embedded store's live item under <paramref name="key"/> (its value, and whether it is a lease placeholder), or <see langword="null"/>.</summary>
    public static (long Value, bool IsPlaceholder)? SqliteValue(string file, string key, TimeSpan busyTimeout)
    {
        using SqliteConnection connection = OpenSqlite(file, busyTimeout);
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "SELECT value, placeholder FROM shared_entity_tokens WHERE key = $key AND (expires_at IS NULL OR expires_at > $now)";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        using SqliteDataReader reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.GetInt64(1) != 0) : null;
    }

    private static SqliteConnection OpenSqlite(string file, TimeSpan busyTimeout)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = file,
            DefaultTimeout = Math.Max(1, (int)busyTimeout.TotalSeconds),
            Pooling = false,
        }.ToString());
        connection.Open();
        using SqliteCommand pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA busy_timeout = " + ((int)busyTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        pragma.ExecuteNonQuery();
        return connection;
    }
}
