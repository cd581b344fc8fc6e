using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SharedEntities;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;

// A "process" of the multi-process tests. Usage:
//   worker increment <db file> <loops> <seconds> <log file>   read-increment-commit through SharedEntities, retrying on conflicts
//   worker seed <db file> <loops> <seconds>                    the seed's protocol, literally: read, work, write back unconditionally
// Prints the number of successful commits. Log lines: "read <version> <utc ticks before the check>" and
// "commit <version> <utc ticks after the commit>".
string mode = args[0];
string file = args[1];
int loops = int.Parse(args[2], CultureInfo.InvariantCulture);
var deadline = Stopwatch.StartNew();
var limit = TimeSpan.FromSeconds(int.Parse(args[3], CultureInfo.InvariantCulture));
string cs = $"Data Source={file};Default Timeout=30";
int successes = 0;

if (mode == "seed")
{
    using var connection = new SqliteConnection(cs);
    connection.Open();
    for (int i = 0; i < loops && deadline.Elapsed < limit; i++)
    {
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT \"Value\" FROM \"Counter\" WHERE \"Id\" = 1";
        long value = (long)read.ExecuteScalar()!;
        Thread.Sleep(1); // the application's work between the read and the write
        using var write = connection.CreateCommand();
        write.CommandText = "UPDATE \"Counter\" SET \"Value\" = $v WHERE \"Id\" = 1";
        write.Parameters.AddWithValue("$v", value + 1);
        write.ExecuteNonQuery();
        successes++;
    }
}
else
{
    using var log = new StreamWriter(args[4]);
    using var coherence = new Coherence(new SqliteSharedStore(cs, busyTimeout: TimeSpan.FromSeconds(30)));
    using var connection = new SqliteConnection(cs);
    connection.Open();
    var loader = new DbEntityLoader(coherence, connection, SqliteDialect.Instance, DbEntityMapping.For<Counter>());
    Counter counter = loader.Find<Counter>(1) ?? throw new InvalidOperationException("No counter row.");
    for (int i = 0; i < loops && deadline.Elapsed < limit; i++)
    {
        try
        {
            await using FreshScope scope = coherence.BeginScope();
            long before = DateTime.UtcNow.Ticks;
            long value = counter.Value; // the check: reloads if another process committed
            log.WriteLine($"read {counter.Version} {before}");
            counter.Value = value + 1;
            await scope.CommitAsync();
            log.WriteLine($"commit {counter.Version} {DateTime.UtcNow.Ticks}");
            successes++;
        }
        catch (StaleEntityException)
        {
            // Another process committed first: nothing was written; the next scope reloads.
        }
    }
}

Console.WriteLine(successes.ToString(CultureInfo.InvariantCulture));

/// <summary>The shared counter.</summary>
[SharedEntity]
public partial class Counter
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial long Value { get; set; }
}
