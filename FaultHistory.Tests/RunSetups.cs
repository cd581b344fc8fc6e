using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;
using SharedEntities.Memcached.Tests;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.FaultHistory.Tests;

/// <summary>
/// Where a run happens: the database and the store its workers share, and the faults the test can inflict on them
/// from outside. Disposing it stops what it started.
/// </summary>
internal interface IRunSetup : IDisposable
{
    string Name { get; }

    /// <summary>The workers' <see cref="WorkerSettings.Database"/>.</summary>
    string Database { get; }

    /// <summary>The workers' <see cref="WorkerSettings.Store"/>.</summary>
    string Store { get; }

    /// <summary>The kinds <see cref="Inject"/> knows; a run injects each at least once.</summary>
    IReadOnlyList<string> ExternalFaults { get; }

    /// <summary>Creates the <c>Counter</c> table with counters 1…<paramref name="keys"/> at version 1, value 0.</summary>
    void CreateCounters(int keys);

    IReadOnlyList<CounterRow> ReadCounters();

    /// <summary>
    /// The database's own record of every change of a counter row, in commit order as far as the database tells it
    /// (<see cref="ExternalFault.AuditHeader"/>): what a finding is checked against, since a row change no history
    /// explains is either a worker that logged wrongly or a write the library reported as not made.
    /// </summary>
    IReadOnlyList<string> ReadAudit();

    /// <summary>Injects one fault of <paramref name="kind"/> (on counter <paramref name="key"/> where it targets one); throws if it could not.</summary>
    void Inject(string kind, int key, int keys, Random random);
}

/// <summary>Faults and helpers both setups share.</summary>
internal static class ExternalFault
{
    public const string FlushAll = "flush-all";             // memcached flush_all; embedded: every token row deleted
    public const string DeleteTokens = "delete-tokens";     // memcached md / embedded DELETE of some hot keys
    public const string TokenAhead = "token-ahead";         // clean(v + AheadBy) raised under a hot key, v its version in the database
    public const string MemcachedRestart = "memcached-restart";
    public const string MemcachedHang = "memcached-hang";   // SIGSTOP, then SIGCONT
    public const string PostgresRestart = "postgres-restart";
    public const string Damage = "damage";                  // a value the library cannot have written, set (no TTL) under a hot key

    /// <summary>
    /// The values of a <see cref="Damage"/> fault for a row at <paramref name="version"/>: no token, a negative number,
    /// a state the library never writes, and tokens so far ahead that no process can hold their version. Never a
    /// clean token at or below a version some process may hold: that replay is the one write no protocol can tell
    /// from the truth (docs/protocol.md, "Security").
    /// </summary>
    public static string DamagedValue(long version, Random random, bool numbersOnly)
    {
        long far = version + (1L << 41);
        string[] values =
        [
            .. numbersOnly ? Array.Empty<string>() : ["garbage", ""],
            "18446744073709551611",                                                          // -5 as memcached's unsigned decimal
            ((4 * version) + 3).ToString(CultureInfo.InvariantCulture),                      // state 3
            TokenEncoding.Clean(far).ToString(CultureInfo.InvariantCulture),
            (4 * far).ToString(CultureInfo.InvariantCulture),                                // dirty, far ahead
            ((4 * far) + 2).ToString(CultureInfo.InvariantCulture),                          // deleted, far ahead
        ];
        return values[random.Next(values.Length)];
    }

    /// <summary>How far ahead of the database a planted token is, and how long it lives (the readers refuse meanwhile).</summary>
    public const int AheadBy = 1000;

    public static readonly TimeSpan AheadTtl = TimeSpan.FromSeconds(2);

    public static readonly TimeSpan Hang = TimeSpan.FromMilliseconds(1500);

    /// <summary>A non-empty random subset of the store keys of counters 1…<paramref name="keys"/>.</summary>
    public static List<string> SomeKeys(int keys, Random random)
    {
        List<string> chosen = [.. Enumerable.Range(1, keys).Where(_ => random.Next(2) == 0).Select(StoreTamper.KeyOf)];
        return chosen.Count > 0 ? chosen : [StoreTamper.KeyOf(random.Next(1, keys + 1))];
    }

    public static string CreateTable(int keys) =>
        "CREATE TABLE \"Counter\" (\"Id\" integer PRIMARY KEY, \"Version\" bigint NOT NULL, \"Value\" bigint NOT NULL); " +
        string.Concat(Enumerable.Range(1, keys).Select(id => string.Create(CultureInfo.InvariantCulture, $"INSERT INTO \"Counter\" VALUES ({id}, 1, 0); ")));

    public const string SelectCounters = "SELECT \"Id\", \"Version\", \"Value\" FROM \"Counter\" ORDER BY \"Id\"";

    /// <summary>The columns of <see cref="IRunSetup.ReadAudit"/>'s lines.</summary>
    public const string AuditHeader = "seq\tcounter\tfrom_version\tfrom_value\tversion\tvalue\tby";

    public const string SelectAudit =
        "SELECT \"Seq\", \"Id\", \"OldVersion\", \"OldValue\", \"Version\", \"Value\", \"By\" FROM \"CounterAudit\" ORDER BY \"Seq\"";

    public static List<string> AuditLines(System.Data.Common.DbDataReader reader)
    {
        var lines = new List<string> { AuditHeader };
        while (reader.Read())
        {
            lines.Add(string.Join('\t', Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture))));
        }

        return lines;
    }

    public static List<CounterRow> Rows(System.Data.Common.DbDataReader reader)
    {
        var rows = new List<CounterRow>();
        while (reader.Read())
        {
            rows.Add(new CounterRow(Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture), reader.GetInt64(1), reader.GetInt64(2)));
        }

        return rows;
    }
}

/// <summary>Production's setup: a database of its own in the test's PostgreSQL cluster, and a memcached of its own.</summary>
internal sealed class PostgresMemcachedSetup : IRunSetup
{
    private readonly PostgresCluster _cluster;
    private readonly MemcachedServer _memcached = new();
    private readonly string _name = "fh_" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _connectionString;

    public PostgresMemcachedSetup(PostgresCluster cluster)
    {
        _cluster = cluster;
        Execute(Admin(), $"CREATE DATABASE {_name}");

        // No pooling, for the workers as for the test: a pooled connection would be dead after a restart of the server.
        _connectionString = new NpgsqlConnectionStringBuilder(cluster.ConnectionString) { Database = _name, Pooling = false }.ToString();
    }

    public string Name => "postgres+memcached";

    public string Database => "postgres:" + _connectionString;

    public string Store => "memcached:" + _memcached.Port.ToString(CultureInfo.InvariantCulture);

    public IReadOnlyList<string> ExternalFaults { get; } =
        [ExternalFault.FlushAll, ExternalFault.DeleteTokens, ExternalFault.TokenAhead, ExternalFault.Damage, ExternalFault.MemcachedRestart, ExternalFault.MemcachedHang,
         ExternalFault.PostgresRestart];

    public void CreateCounters(int keys) => Execute(_connectionString, ExternalFault.CreateTable(keys) + Audit);

    public IReadOnlyList<CounterRow> ReadCounters() => Query(ExternalFault.SelectCounters, ExternalFault.Rows);

    public IReadOnlyList<string> ReadAudit() => Query(ExternalFault.SelectAudit, ExternalFault.AuditLines);

    private T Query<T>(string sql, Func<System.Data.Common.DbDataReader, T> read)
    {
        using var connection = new NpgsqlConnection(_connectionString);
        connection.Open();
        using NpgsqlCommand select = connection.CreateCommand();
        select.CommandText = sql;
        using NpgsqlDataReader reader = select.ExecuteReader();
        return read(reader);
    }

    public void Inject(string kind, int key, int keys, Random random)
    {
        TimeSpan timeout = TimeSpan.FromSeconds(3);
        switch (kind)
        {
            case ExternalFault.FlushAll:
                StoreTamper.MemcachedFlush(_memcached.Port, timeout);
                break;
            case ExternalFault.DeleteTokens:
                ExternalFault.SomeKeys(keys, random).ForEach(k => StoreTamper.MemcachedDelete(_memcached.Port, k, timeout));
                break;
            case ExternalFault.TokenAhead:
                // Read, then raise far enough ahead that no writer can pass the value in between (a raise, never a set:
                // a token behind the database would be a replayed old token, not a store ahead of it).
                long version = ReadCounters().Single(r => r.Key == key).Version;
                StoreTamper.MemcachedRaise(_memcached.Port, StoreTamper.KeyOf(key), TokenEncoding.Clean(version + ExternalFault.AheadBy),
                    (int)ExternalFault.AheadTtl.TotalSeconds, timeout);
                break;
            case ExternalFault.Damage:
                StoreTamper.MemcachedSet(
                    _memcached.Port, StoreTamper.KeyOf(key), ExternalFault.DamagedValue(ReadCounters().Single(r => r.Key == key).Version, random, numbersOnly: false), timeout);
                break;
            case ExternalFault.MemcachedRestart:
                _memcached.Restart(); // SIGKILL, then a new process on the same port: every token gone
                break;
            case ExternalFault.MemcachedHang:
                _memcached.Pause();
                try
                {
                    Thread.Sleep(ExternalFault.Hang); // longer than the client's operation timeout
                }
                finally
                {
                    _memcached.Resume();
                }

                break;
            case ExternalFault.PostgresRestart:
                _cluster.Restart();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a fault of this setup.");
        }
    }

    public void Dispose()
    {
        _memcached.Dispose();
        try
        {
            Execute(Admin(), $"DROP DATABASE IF EXISTS {_name} WITH (FORCE)");
        }
        catch (NpgsqlException)
        {
            // The cluster is removed at the end of the run anyway.
        }
    }

    // Every committed change of a counter, with the worker's connection (its Application Name). The sequence is taken
    // in the writing transaction, so its order is that of the row's changes (each holds the row lock until it commits).
    private const string Audit =
        "CREATE TABLE \"CounterAudit\" (\"Seq\" bigserial PRIMARY KEY, \"Id\" integer, \"OldVersion\" bigint, \"OldValue\" bigint, " +
        "\"Version\" bigint, \"Value\" bigint, \"By\" text); " +
        "CREATE FUNCTION counter_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
        "INSERT INTO \"CounterAudit\" (\"Id\", \"OldVersion\", \"OldValue\", \"Version\", \"Value\", \"By\") " +
        "VALUES (NEW.\"Id\", OLD.\"Version\", OLD.\"Value\", NEW.\"Version\", NEW.\"Value\", current_setting('application_name')); RETURN NEW; END $$; " +
        "CREATE TRIGGER counter_audit AFTER UPDATE ON \"Counter\" FOR EACH ROW EXECUTE FUNCTION counter_audit();";

    private string Admin() => new NpgsqlConnectionStringBuilder(_cluster.ConnectionString) { Pooling = false }.ToString();

    private static void Execute(string connectionString, string sql)
    {
        using var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        using NpgsqlCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

/// <summary>The embedded default: one SQLite file holds the counters and the store's token table.</summary>
internal sealed class SqliteEmbeddedSetup(string folder) : IRunSetup
{
    private static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(10);
    private readonly string _file = Path.Combine(folder, "app.db");

    public string Name => "sqlite+embedded";

    public string Database => "sqlite:" + _file;

    public string Store => "embedded";

    public IReadOnlyList<string> ExternalFaults { get; } = [ExternalFault.FlushAll, ExternalFault.DeleteTokens, ExternalFault.TokenAhead, ExternalFault.Damage];

    public void CreateCounters(int keys)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = WAL; " + ExternalFault.CreateTable(keys) + Audit;
        command.ExecuteNonQuery();
    }

    // Every committed change of a counter (one writer at a time holds the file: the rowid order is the commit order).
    private const string Audit =
        "CREATE TABLE \"CounterAudit\" (\"Seq\" INTEGER PRIMARY KEY AUTOINCREMENT, \"Id\" integer, \"OldVersion\" bigint, \"OldValue\" bigint, " +
        "\"Version\" bigint, \"Value\" bigint, \"By\" text); " +
        "CREATE TRIGGER counter_audit AFTER UPDATE ON \"Counter\" BEGIN " +
        "INSERT INTO \"CounterAudit\" (\"Id\", \"OldVersion\", \"OldValue\", \"Version\", \"Value\", \"By\") " +
        "VALUES (NEW.\"Id\", OLD.\"Version\", OLD.\"Value\", NEW.\"Version\", NEW.\"Value\", '-'); END;";

    public IReadOnlyList<CounterRow> ReadCounters() => Query(ExternalFault.SelectCounters, ExternalFault.Rows);

    public IReadOnlyList<string> ReadAudit() => Query(ExternalFault.SelectAudit, ExternalFault.AuditLines);

    private T Query<T>(string sql, Func<System.Data.Common.DbDataReader, T> read)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand select = connection.CreateCommand();
        select.CommandText = sql;
        using SqliteDataReader reader = select.ExecuteReader();
        return read(reader);
    }

    public void Inject(string kind, int key, int keys, Random random)
    {
        switch (kind)
        {
            case ExternalFault.FlushAll:
                StoreTamper.SqliteDelete(_file, null, BusyTimeout);
                break;
            case ExternalFault.DeleteTokens:
                StoreTamper.SqliteDelete(_file, ExternalFault.SomeKeys(keys, random), BusyTimeout);
                break;
            case ExternalFault.TokenAhead:
                StoreTamper.SqliteRaiseAhead(_file, key, ExternalFault.AheadBy, ExternalFault.AheadTtl, BusyTimeout);
                break;
            case ExternalFault.Damage:
                // The embedded store's table holds numbers only: text there would be a write to the application's own file.
                string value = ExternalFault.DamagedValue(ReadCounters().Single(r => r.Key == key).Version, random, numbersOnly: true);
                StoreTamper.SqliteSet(_file, StoreTamper.KeyOf(key), (long)ulong.Parse(value, CultureInfo.InvariantCulture), BusyTimeout);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a fault of this setup.");
        }
    }

    public void Dispose() => SqliteConnection.ClearAllPools();

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection($"Data Source={_file};Default Timeout=10;Pooling=False");
        connection.Open();
        return connection;
    }
}
