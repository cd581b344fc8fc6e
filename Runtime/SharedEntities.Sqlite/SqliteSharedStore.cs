using System.Globalization;
using Microsoft.Data.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.Sqlite;

/// <summary>
/// The embedded store: tokens live in a table of a SQLite file (normally the application's own database file), so
/// several processes on one machine share entities with no server. Every batch runs in one <c>BEGIN IMMEDIATE</c>
/// transaction, so each operation (and the batch as a whole) is atomic across processes. The semantics are those of
/// <see cref="InMemorySharedStore"/>, operation by operation.
/// </summary>
/// <remarks>
/// <para>The table is <c>shared_entity_tokens(key TEXT PRIMARY KEY, value INTEGER, cas INTEGER, expires_at INTEGER
/// NULL, placeholder INTEGER)</c>, created on first use; <c>expires_at</c> is in Unix milliseconds of the
/// <see cref="TimeProvider"/>. Expired rows are treated as absent and removed when they are next touched.</para>
/// <para>A file that cannot be opened, or is locked longer than the busy timeout, makes the batch's operations
/// <see cref="StoreStatus.Unavailable"/>: the store never throws for that. The application brings a SQLitePCLRaw
/// bundle (e.g. by referencing <c>Microsoft.Data.Sqlite</c>).</para>
/// </remarks>
public sealed class SqliteSharedStore : ISharedStore
{
    /// <summary>The name of the token table.</summary>
    public const string TableName = "shared_entity_tokens";

    private static readonly AsyncLocal<Enlistment?> Ambient = new();

    private readonly string _connectionString;
    private readonly string _fullPath;
    private readonly TimeProvider _time;
    private readonly int _busyTimeoutMs;
    private readonly bool _useWal;
    private volatile bool _initialized;
    private long _batchCount;

    /// <summary>Creates the store on a SQLite database.</summary>
    /// <param name="connectionString">A <c>Microsoft.Data.Sqlite</c> connection string (<c>Data Source=app.db</c>).</param>
    /// <param name="timeProvider">The clock for TTLs (tests pass a fake one). Processes sharing a file must share a clock.</param>
    /// <param name="busyTimeout">How long a batch waits for another process's transaction on the file before it
    /// answers <see cref="StoreStatus.Unavailable"/>. Default: 2 seconds.</param>
    /// <param name="useWal">Switch the file to WAL journaling on first use (recommended: readers never block the writer).</param>
    public SqliteSharedStore(string connectionString, TimeProvider? timeProvider = null, TimeSpan? busyTimeout = null, bool useWal = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        TimeSpan timeout = busyTimeout ?? TimeSpan.FromSeconds(2);
        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero, nameof(busyTimeout));
        _busyTimeoutMs = (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds);
        var builder = new SqliteConnectionStringBuilder(connectionString)
        {
            // Microsoft.Data.Sqlite retries SQLITE_BUSY for the command timeout; keep it in line with the busy timeout.
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds)),
        };
        _connectionString = builder.ToString();
        _fullPath = DatabaseIdentity(builder.DataSource);
        _time = timeProvider ?? TimeProvider.System;
        _useWal = useWal;
    }

    /// <summary>The number of batches executed.</summary>
    public long BatchCount => Interlocked.Read(ref _batchCount);

    /// <summary>The raw value stored for <paramref name="key"/>, if any (placeholders and expired items excluded). For tests and tools.</summary>
    public long? Peek(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        using SqliteConnection connection = Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = $"SELECT value, expires_at, placeholder FROM {TableName} WHERE key = $key";
        command.Parameters.AddWithValue("$key", key);
        using SqliteDataReader reader = command.ExecuteReader();
        if (!reader.Read() || reader.GetInt64(2) != 0)
        {
            return null;
        }

        return !reader.IsDBNull(1) && reader.GetInt64(1) <= Now() ? null : reader.GetInt64(0);
    }

    /// <summary>Drops one item, as an eviction would.</summary>
    public bool Evict(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        using SqliteConnection connection = Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = $"DELETE FROM {TableName} WHERE key = $key";
        command.Parameters.AddWithValue("$key", key);
        return command.ExecuteNonQuery() > 0;
    }

    /// <summary>Drops every item, as a server restart would.</summary>
    public void Clear()
    {
        using SqliteConnection connection = Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = $"DELETE FROM {TableName}";
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Makes the batches of every <see cref="SqliteSharedStore"/> on the same file run inside
    /// <paramref name="transaction"/> (in this flow, until the returned handle is disposed or the transaction ends),
    /// instead of beginning transactions of their own. A process holding SQLite's write lock (a commit's
    /// <c>BEGIN IMMEDIATE</c>, a locked version read) must do this: a second transaction on the file would wait for the
    /// first, which waits for the store. <see cref="AdoNet.DbEntityLoader"/> does it for its own transactions; the
    /// dirty tokens are then raised atomically with the guarded writes. Call it from a synchronous method (or at the
    /// level of the code that uses the store): the enlistment flows with the <see cref="ExecutionContext"/>.
    /// </summary>
    public static IDisposable EnlistTransaction(SqliteConnection connection, SqliteTransaction transaction)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(transaction);
        // An open connection names its file; an in-memory database has none, and is named by its connection string.
        string identity = connection.DataSource is { Length: > 0 } file
            ? Path.GetFullPath(file)
            : DatabaseIdentity(new SqliteConnectionStringBuilder(connection.ConnectionString).DataSource);
        var enlistment = new Enlistment(connection, transaction, identity);
        Ambient.Value = enlistment;
        return enlistment;
    }

    // What tells two connections to one database: a file's full path; an in-memory database's name (a shared-cache URI,
    // file:name?mode=memory&cache=shared) as it is written.
    private static string DatabaseIdentity(string dataSource) =>
        dataSource.Length == 0 || dataSource == ":memory:" || dataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase)
            ? dataSource
            : Path.GetFullPath(dataSource);

    /// <inheritdoc/>
    public void Execute(StoreBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        Interlocked.Increment(ref _batchCount);
        if (batch.Count == 0)
        {
            return;
        }

        try
        {
            if (Ambient.Value is { Transaction: { Connection: not null } enlisted } enlistment &&
                string.Equals(enlistment.FullPath, _fullPath, StringComparison.Ordinal))
            {
                Run(batch, enlistment.Connection, enlisted);
                return;
            }

            using SqliteConnection connection = Open();
            using SqliteTransaction transaction = connection.BeginTransaction(deferred: false);
            Run(batch, connection, transaction);
            transaction.Commit();
        }
        catch (SqliteException ex)
        {
            // Locked past the busy timeout, unopenable, read-only, full disk: the batch did not happen (its
            // transaction rolled back), whatever results were recorded before the failure.
            StoreStatus status = ex.SqliteErrorCode is 5 or 6 or 8 or 10 or 13 or 14 ? StoreStatus.Unavailable : StoreStatus.Failed;
            for (int i = 0; i < batch.Count; i++)
            {
                batch.SetResult(i, new StoreResult(status, Error: ex));
            }
        }
        catch (InvalidOperationException ex)
        {
            // Microsoft.Data.Sqlite reports some open failures (no provider, bad path) this way.
            for (int i = 0; i < batch.Count; i++)
            {
                batch.SetResult(i, new StoreResult(StoreStatus.Unavailable, Error: ex));
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>SQLite is in-process: the batch runs synchronously on the calling thread.</remarks>
    public ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Execute(batch);
        return ValueTask.CompletedTask;
    }

    private void Run(StoreBatch batch, SqliteConnection connection, SqliteTransaction transaction)
    {
        if (!_initialized)
        {
            Initialize(connection, transaction);
            _initialized = true;
        }

        using var statements = new Statements(connection, transaction, Now());
        for (int i = 0; i < batch.Count; i++)
        {
            batch.SetResult(i, StoreSemantics.Apply(statements, batch.Operations[i]));
        }
    }

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            using (SqliteCommand pragma = connection.CreateCommand())
            {
                pragma.CommandText = "PRAGMA busy_timeout = " + _busyTimeoutMs.ToString(CultureInfo.InvariantCulture);
                pragma.ExecuteNonQuery();
            }

            if (!_initialized)
            {
                Initialize(connection);
                _initialized = true;
            }

            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private void Initialize(SqliteConnection connection, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        if (_useWal && transaction is null)
        {
            command.CommandText = "PRAGMA journal_mode = WAL";
            command.ExecuteNonQuery();
        }

        command.CommandText =
            $"CREATE TABLE IF NOT EXISTS {TableName} (key TEXT PRIMARY KEY, value INTEGER NOT NULL, cas INTEGER NOT NULL, " +
            "expires_at INTEGER NULL, placeholder INTEGER NOT NULL)";
        command.ExecuteNonQuery();
    }

    private sealed class Enlistment(SqliteConnection connection, SqliteTransaction transaction, string fullPath) : IDisposable
    {
        public SqliteConnection Connection { get; } = connection;

        public SqliteTransaction? Transaction { get; private set; } = transaction;

        public string FullPath { get; } = fullPath;

        // A mutation, not an AsyncLocal write: it must be seen by the flow that enlisted, whichever flow disposes.
        public void Dispose() => Transaction = null;
    }


    /// <summary>The prepared statements of one batch.</summary>
    private sealed class Statements : IStoredItems, IDisposable
    {
        private readonly long _now;
        private readonly SqliteCommand _select;
        private readonly SqliteCommand _delete;
        private readonly SqliteCommand _upsert;
        private readonly SqliteCommand _increment;

        public Statements(SqliteConnection connection, SqliteTransaction transaction, long now)
        {
            _now = now;
            _select = Create(connection, transaction, $"SELECT value, cas, expires_at, placeholder FROM {TableName} WHERE key = $key", "$key");
            _delete = Create(connection, transaction, $"DELETE FROM {TableName} WHERE key = $key", "$key");
            _upsert = Create(
                connection,
                transaction,
                $"INSERT INTO {TableName} (key, value, cas, expires_at, placeholder) VALUES ($key, $value, $cas, $expires, $placeholder) " +
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, cas = excluded.cas, expires_at = excluded.expires_at, placeholder = excluded.placeholder",
                "$key",
                "$value",
                "$cas",
                "$expires",
                "$placeholder");
            _increment = Create(connection, transaction, $"UPDATE {TableName} SET value = $value, cas = $cas WHERE key = $key", "$key", "$value", "$cas");
        }

        public bool TryGet(string key, out StoredItem item)
        {
            long? expiresAt;
            _select.Parameters[0].Value = key;
            using (SqliteDataReader reader = _select.ExecuteReader())
            {
                if (!reader.Read())
                {
                    item = default;
                    return false;
                }

                item = new StoredItem(reader.GetInt64(0), unchecked((ulong)reader.GetInt64(1)), reader.GetInt64(3) != 0);
                expiresAt = reader.IsDBNull(2) ? null : reader.GetInt64(2);
            }

            if (expiresAt is { } expires && expires <= _now)
            {
                _delete.Parameters[0].Value = key;
                _delete.ExecuteNonQuery();
                item = default;
                return false;
            }

            return true;
        }

        public StoredItem Put(string key, long value, TimeSpan ttl, bool isPlaceholder)
        {
            long? expires = ttl > TimeSpan.Zero ? _now + (long)Math.Ceiling(ttl.TotalMilliseconds) : null;
            var item = new StoredItem(value, NewCas(), isPlaceholder);
            _upsert.Parameters[0].Value = key;
            _upsert.Parameters[1].Value = value;
            _upsert.Parameters[2].Value = unchecked((long)item.Cas);
            _upsert.Parameters[3].Value = expires is { } e ? e : DBNull.Value;
            _upsert.Parameters[4].Value = isPlaceholder ? 1 : 0;
            _upsert.ExecuteNonQuery();
            return item;
        }

        public StoredItem Increment(string key, StoredItem current)
        {
            StoredItem item = current with { Value = unchecked(current.Value + 1), Cas = NewCas() };
            _increment.Parameters[0].Value = key;
            _increment.Parameters[1].Value = item.Value;
            _increment.Parameters[2].Value = unchecked((long)item.Cas);
            _increment.ExecuteNonQuery();
            return item;
        }

        public void Dispose()
        {
            _select.Dispose();
            _delete.Dispose();
            _upsert.Dispose();
            _increment.Dispose();
        }

        // Unique across processes without a shared counter: 63 random bits (a collision needs ~3·10⁹ live items).
        private static ulong NewCas() => (ulong)Random.Shared.NextInt64(1, long.MaxValue);

        private static SqliteCommand Create(SqliteConnection connection, SqliteTransaction transaction, string sql, params string[] parameters)
        {
            SqliteCommand command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            foreach (string name in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            command.Prepare();
            return command;
        }
    }
}
