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

    /// <summary>
    /// Raises memcached's item <paramref name="key"/> to <paramref name="value"/> (ASCII decimal, as the runtime writes
    /// its tokens) with a TTL in seconds, by compare-and-swap: never lower. A blind set could land after writers had
    /// moved the row past the value read for it, and would then plant a token <em>behind</em> the database — a replay of
    /// an old clean token, which no protocol can tell from the real one — instead of the store ahead of the database
    /// this fault stands for. Returns whether it wrote (not when the item is already at or above the value).
    /// </summary>
    public static bool MemcachedRaise(int port, string key, long value, int ttlSeconds, TimeSpan timeout)
    {
        string text = value.ToString(CultureInfo.InvariantCulture);
        for (int attempt = 0; attempt < 16; attempt++)
        {
            string[] seen = MemcachedServer.Raw(port, $"mg {key} v c\r\n", timeout).Split("\r\n");
            string mode;
            if (seen[0].StartsWith("VA ", StringComparison.Ordinal))
            {
                if (long.TryParse(seen[1], NumberStyles.None, CultureInfo.InvariantCulture, out long current) && current >= value)
                {
                    return false;
                }

                mode = seen[0].Split(' ').First(f => f.StartsWith('c'))[1..];
                mode = "C" + mode;
            }
            else
            {
                mode = "ME"; // add: only if still absent
            }

            string reply = MemcachedServer.Raw(port, $"ms {key} {text.Length} T{ttlSeconds} {mode}\r\n{text}\r\n", timeout);
            if (reply.StartsWith("HD", StringComparison.Ordinal))
            {
                return true;
            }
        }

        throw new InvalidOperationException($"memcached item {key} kept changing under the raise to {value}.");
    }

    /// <summary>
    /// memcached <c>ms</c> without a TTL: <paramref name="text"/> under <paramref name="key"/>, whatever is there — a
    /// client that writes values the library cannot have written (the runtime repairs them as misses).
    /// </summary>
    public static void MemcachedSet(int port, string key, string text, TimeSpan timeout)
    {
        string reply = MemcachedServer.Raw(port, $"ms {key} {System.Text.Encoding.UTF8.GetByteCount(text)} T0\r\n{text}\r\n", timeout);
        if (!reply.StartsWith("HD", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"memcached refused to set {key}: {reply.Trim()}");
        }
    }

    /// <summary>The embedded store's item <paramref name="key"/> set to <paramref name="value"/>, with no expiry, whatever is there.</summary>
    public static void SqliteSet(string file, string key, long value, TimeSpan busyTimeout)
    {
        using SqliteConnection connection = OpenSqlite(file, busyTimeout);
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "INSERT OR REPLACE INTO shared_entity_tokens (key, value, cas, expires_at, placeholder) VALUES ($key, $value, $cas, NULL, 0)";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$value", value);
        command.Parameters.AddWithValue("$cas", Random.Shared.NextInt64(1, long.MaxValue));
        command.ExecuteNonQuery();
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
    /// Raises the embedded store's item <paramref name="key"/> to <c>clean(version + aheadBy)</c>, <c>version</c> being
    /// counter <paramref name="id"/>'s in the same file, read in the same <c>BEGIN IMMEDIATE</c> transaction (which keeps
    /// every writer out): the token is then truly ahead of the database, never behind it (see
    /// <see cref="MemcachedRaise"/>). Its expiry is <paramref name="ttl"/> from now on the system clock (the store's table:
    /// key, value, cas, expires_at in Unix milliseconds, placeholder). Returns whether it wrote.
    /// </summary>
    public static bool SqliteRaiseAhead(string file, int id, int aheadBy, TimeSpan ttl, TimeSpan busyTimeout)
    {
        using SqliteConnection connection = OpenSqlite(file, busyTimeout);
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
        using SqliteCommand read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = "SELECT \"Version\" FROM \"Counter\" WHERE \"Id\" = $id";
        read.Parameters.AddWithValue("$id", id);
        long value = TokenEncoding.Clean(Convert.ToInt64(read.ExecuteScalar(), CultureInfo.InvariantCulture) + aheadBy);
        string key = KeyOf(id);
        if (SqliteValue(connection, transaction, key) is { IsPlaceholder: false } current && current.Value >= value)
        {
            return false;
        }

        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText =
            "INSERT INTO shared_entity_tokens (key, value, cas, expires_at, placeholder) VALUES ($key, $value, $cas, $expires, 0) " +
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, cas = excluded.cas, expires_at = excluded.expires_at, placeholder = 0";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$value", value);
        command.Parameters.AddWithValue("$cas", Random.Shared.NextInt64(1, long.MaxValue));
        command.Parameters.AddWithValue("$expires", DateTimeOffset.UtcNow.Add(ttl).ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
        transaction.Commit();
        return true;
    }

    /// <summary>The embedded store's live item under <paramref name="key"/> (its value, and whether it is a lease placeholder), or <see langword="null"/>.</summary>
    public static (long Value, bool IsPlaceholder)? SqliteValue(string file, string key, TimeSpan busyTimeout)
    {
        using SqliteConnection connection = OpenSqlite(file, busyTimeout);
        return SqliteValue(connection, transaction: null, key);
    }

    private static (long Value, bool IsPlaceholder)? SqliteValue(SqliteConnection connection, SqliteTransaction? transaction, string key)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
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
