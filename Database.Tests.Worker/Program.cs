using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;
using SharedEntities;
using SharedEntities.AdoNet;
using SharedEntities.Memcached;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Worker;

// A "process" of the multi-process tests. Usage:
//   worker increment <database> <store> <loops> <seconds> <log file>   read-increment-commit through SharedEntities, retrying on conflicts
//   worker seed <database> - <loops> <seconds> -                       the seed's protocol, literally: read, work, write back unconditionally
// <database>: sqlite:<file> or postgres:<connection string>; <store>: embedded (the SQLite file's token table) or
// memcached:<host:port>. Prints "<commits> <conflicts> <store unavailable>". Log lines: "read <version> <utc ticks
// before the check>" and "commit <version> <utc ticks after the commit>", flushed as written.
// SHAREDENTITIES_WORKER_DIE_BEFORE_PUBLISH=<n>: on its n-th commit the worker kills itself after the database commit
// and before the publish (after logging that commit), leaving its dirty token behind.
string mode = args[0];
(string databaseKind, string database) = Split(args[1]);
int loops = int.Parse(args[3], CultureInfo.InvariantCulture);
var limit = TimeSpan.FromSeconds(int.Parse(args[4], CultureInfo.InvariantCulture));
var clock = Stopwatch.StartNew();
int commits = 0, conflicts = 0, unavailable = 0;
await using DbConnection connection = databaseKind == "postgres" ? new NpgsqlConnection(database) : new SqliteConnection(Sqlite(database));
await connection.OpenAsync();

if (mode == "seed")
{
    for (; commits < loops && clock.Elapsed < limit; commits++)
    {
        await using DbCommand read = connection.CreateCommand();
        read.CommandText = "SELECT \"Value\" FROM \"Counter\" WHERE \"Id\" = 1";
        long value = Convert.ToInt64(await read.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        await Task.Delay(1); // the application's work between the read and the write
        await using DbCommand write = connection.CreateCommand();
        write.CommandText = "UPDATE \"Counter\" SET \"Value\" = @v WHERE \"Id\" = 1";
        DbParameter parameter = write.CreateParameter();
        parameter.ParameterName = "v";
        parameter.Value = value + 1;
        write.Parameters.Add(parameter);
        await write.ExecuteNonQueryAsync();
    }
}
else
{
    await using var log = new StreamWriter(args[5]) { AutoFlush = true };
    (string storeKind, string storeAddress) = Split(args[2]);
    ISharedStore store = storeKind == "memcached"
        ? new MemcachedStore(new MemcachedClientOptions { Servers = storeAddress, CircuitBreakerCooldown = TimeSpan.FromMilliseconds(200) })
        : new SqliteSharedStore(Sqlite(database), busyTimeout: TimeSpan.FromSeconds(30));
    if (Environment.GetEnvironmentVariable("SHAREDENTITIES_WORKER_DIE_BEFORE_PUBLISH") is { } dieAt)
    {
        store = new DieBeforePublishStore(store, int.Parse(dieAt, CultureInfo.InvariantCulture), log);
    }

    using var coherence = new Coherence(store);
    DbDialect dialect = databaseKind == "postgres" ? DbDialect.PostgreSql : SqliteDialect.Instance;
    var loader = new DbEntityLoader(coherence, connection, dialect, DbEntityMapping.For<Counter>());
    Counter counter = await loader.FindAsync<Counter>(1) ?? throw new InvalidOperationException("No counter row.");
    for (int attempt = 0; commits < loops && attempt < loops * 50 && clock.Elapsed < limit; attempt++)
    {
        try
        {
            await using FreshScope scope = coherence.BeginScope();
            long before = DateTime.UtcNow.Ticks;
            long value = counter.Value; // the check: reloads if another process committed
            await log.WriteLineAsync($"read {counter.Version} {before}");
            counter.Value = value + 1;
            await scope.CommitAsync();
            await log.WriteLineAsync($"commit {counter.Version} {DateTime.UtcNow.Ticks}");
            commits++;
        }
        catch (StaleEntityException)
        {
            conflicts++; // another process committed first: nothing was written; the next scope reloads
        }
        catch (SharedStoreUnavailableException)
        {
            unavailable++; // the store could not take the dirty token: the commit was refused (rolled back)
            await Task.Delay(20);
        }
    }
}

Console.WriteLine($"{commits} {conflicts} {unavailable}");

static (string Kind, string Value) Split(string text)
{
    int colon = text.IndexOf(':', StringComparison.Ordinal);
    return colon < 0 ? (text, "") : (text[..colon], text[(colon + 1)..]);
}

static string Sqlite(string file) => $"Data Source={file};Default Timeout=30";

/// <summary>The shared counter.</summary>
[SharedEntity]
public partial class Counter
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial long Value { get; set; }
}
