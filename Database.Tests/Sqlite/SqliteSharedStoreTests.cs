using Microsoft.Data.Sqlite;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using K = SharedEntities.Stores.StoreOperationKind;

namespace SharedEntities.Database.Tests;

/// <summary>The embedded store: the in-memory store's semantics, operation by operation, on a SQLite file.</summary>
public sealed class SqliteSharedStoreTests : IDisposable
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>One scripted operation. <c>CasFrom</c>: the index of an earlier step whose returned CAS a fill presents (-1: a CAS nobody holds).</summary>
    public sealed record Op(K Kind, string Key, long Value = 0, long Expected = 0, int CasFrom = -1, double TtlSeconds = 10, bool Lease = false, double AdvanceSeconds = 0);

    public static TheoryData<string, Op[][]> Scripts => new()
    {
        {
            "read, lease, fill",
            [
                [new(K.Read, "a"), new(K.Read, "a", Lease: true), new(K.Read, "a", Lease: true)],
                [new(K.Fill, "a", 7, CasFrom: 2), new(K.Fill, "a", 9, CasFrom: 1), new(K.Read, "a")],
                [new(K.Fill, "a", 11, CasFrom: 1), new(K.Read, "a", Lease: true)],
            ]
        },
        {
            "raise only rises; placeholder and miss are below everything",
            [
                [new(K.Raise, "r", 4), new(K.Raise, "r", 3), new(K.Raise, "r", 4), new(K.Raise, "r", 6), new(K.Read, "r")],
                [new(K.Read, "p", Lease: true), new(K.Raise, "p", 1), new(K.Fill, "p", 9, CasFrom: 0), new(K.Read, "p")],
                [new(K.Raise, "t", long.MaxValue), new(K.Raise, "t", 5), new(K.Read, "t")],
            ]
        },
        {
            "publish never adds and replaces only the expected value",
            [
                [new(K.Publish, "k", 5, Expected: 4), new(K.Read, "k")],
                [new(K.Raise, "k", 4), new(K.Publish, "k", 5, Expected: 2), new(K.Publish, "k", 5, Expected: 4), new(K.Read, "k")],
                [new(K.Read, "l", Lease: true), new(K.Publish, "l", 5, Expected: 0), new(K.Read, "l", Lease: true)],
            ]
        },
        {
            "increment and add-if-absent",
            [
                [new(K.Increment, "s"), new(K.AddIfAbsent, "s", 40), new(K.AddIfAbsent, "s", 50), new(K.Increment, "s"), new(K.Increment, "s")],
                [new(K.Read, "q", Lease: true), new(K.AddIfAbsent, "q", 1), new(K.Increment, "q"), new(K.Read, "s")],
            ]
        },
        {
            "TTLs: values, placeholders, increments keep the expiry",
            [
                [new(K.Raise, "e", 3, TtlSeconds: 5), new(K.Read, "x", Lease: true, TtlSeconds: 2), new(K.AddIfAbsent, "n", 1, TtlSeconds: 0)],
                [new(K.Read, "e", AdvanceSeconds: 3), new(K.Read, "x", Lease: true), new(K.Increment, "e")],
                [new(K.Read, "x", Lease: true, AdvanceSeconds: 1), new(K.Read, "e", AdvanceSeconds: 1.5), new(K.Increment, "e")],
                [new(K.Read, "e", AdvanceSeconds: 0.6), new(K.Read, "n", AdvanceSeconds: 100_000), new(K.Fill, "x", 3, CasFrom: 0)],
            ]
        },
    };

    [Theory]
    [MemberData(nameof(Scripts))]
    public async Task Scripted_batches_give_the_same_results_as_the_in_memory_store(string name, Op[][] script)
    {
        ArgumentNullException.ThrowIfNull(script);
        var memoryClock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        var sqliteClock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
        var memory = new InMemorySharedStore(memoryClock);
        var sqlite = new SqliteSharedStore($"Data Source={_folder.File("tokens.db")}", sqliteClock);
        var memoryResults = new List<StoreResult>();
        var sqliteResults = new List<StoreResult>();
        var steps = new List<Op>();
        for (int b = 0; b < script.Length; b++)
        {
            // Each step's clock advance happens before its batch; a batch is applied at one instant.
            double advance = script[b].Sum(s => s.AdvanceSeconds);
            memoryClock.Advance(TimeSpan.FromSeconds(advance));
            sqliteClock.Advance(TimeSpan.FromSeconds(advance));
            StoreBatch m = Build(script[b], memoryResults);
            StoreBatch s = Build(script[b], sqliteResults);
            if (b % 2 == 0)
            {
                memory.Execute(m);
                sqlite.Execute(s);
            }
            else
            {
                await memory.ExecuteAsync(m);
                await sqlite.ExecuteAsync(s);
            }

            for (int i = 0; i < m.Count; i++)
            {
                memoryResults.Add(m[i]);
                sqliteResults.Add(s[i]);
            }

            steps.AddRange(script[b]);
        }

        for (int i = 0; i < steps.Count; i++)
        {
            string what = $"{name}: step {i} ({steps[i].Kind} {steps[i].Key})";
            Assert.True(memoryResults[i].Status == sqliteResults[i].Status, $"{what}: {memoryResults[i].Status} vs {sqliteResults[i].Status}");
            Assert.True(memoryResults[i].Value == sqliteResults[i].Value, $"{what}: value {memoryResults[i].Value} vs {sqliteResults[i].Value}");
            Assert.Equal(memoryResults[i].Cas == 0, sqliteResults[i].Cas == 0);
        }

        foreach (string key in steps.Select(s => s.Key).Distinct())
        {
            Assert.Equal(memory.Peek(key), sqlite.Peek(key));
        }
    }

    [Fact]
    public void Every_operation_kind_is_scripted()
    {
        var kinds = Scripts.SelectMany(row => ((Op[][])row[1]).SelectMany(b => b)).Select(s => s.Kind).ToHashSet();
        Assert.Equal(Enum.GetValues<K>().Length, kinds.Count);
    }

    [Fact]
    public async Task Raises_from_many_connections_are_atomic_and_increments_are_exact()
    {
        string cs = $"Data Source={_folder.File("shared.db")}";
        const int Writers = 6;
        const int Rounds = 60;
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            // A store per "process": nothing shared in memory but the file.
            var store = new SqliteSharedStore(cs, busyTimeout: TimeSpan.FromSeconds(20));
            var seed = new StoreBatch();
            seed.Add(new StoreOperation(K.AddIfAbsent, "serial", 0));
            store.Execute(seed);
            for (int i = 0; i < Rounds; i++)
            {
                var batch = new StoreBatch();
                batch.Add(new StoreOperation(K.Raise, "max", (w * Rounds) + i));
                batch.Add(new StoreOperation(K.Increment, "serial"));
                store.Execute(batch);
                Assert.Equal(StoreStatus.Stored, batch[1].Status);
                Assert.NotEqual(StoreStatus.Unavailable, batch[0].Status);
            }
        })));

        var reader = new SqliteSharedStore(cs);
        Assert.Equal(Writers * Rounds, reader.Peek("serial"));
        Assert.Equal((Writers * Rounds) - 1, reader.Peek("max"));
    }

    [Fact]
    public void Exactly_one_of_many_connections_wins_a_lease()
    {
        string cs = $"Data Source={_folder.File("lease.db")}";
        var results = new StoreStatus[8];
        Parallel.For(0, results.Length, i =>
        {
            var batch = new StoreBatch();
            batch.AddRead("k", TimeSpan.FromSeconds(10));
            new SqliteSharedStore(cs, busyTimeout: TimeSpan.FromSeconds(20)).Execute(batch);
            results[i] = batch[0].Status;
        });

        Assert.Equal(1, results.Count(s => s == StoreStatus.LeaseWon));
        Assert.Equal(results.Length - 1, results.Count(s => s == StoreStatus.LeaseLost));
    }

    [Fact]
    public async Task A_locked_file_answers_unavailable_and_never_throws()
    {
        string path = _folder.File("locked.db");
        var store = new SqliteSharedStore($"Data Source={path}", busyTimeout: TimeSpan.FromMilliseconds(100));
        Assert.Null(store.Peek("k"));
        using (var holder = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            holder.Open();
            using var exclusive = holder.CreateCommand();
            exclusive.CommandText = "BEGIN EXCLUSIVE";
            exclusive.ExecuteNonQuery();
            var batch = new StoreBatch();
            batch.Add(new StoreOperation(K.Raise, "k", 2));
            batch.AddRead("k");
            await store.ExecuteAsync(batch);
            Assert.Equal(StoreStatus.Unavailable, batch[0].Status);
            Assert.Equal(StoreStatus.Unavailable, batch[1].Status);
            Assert.IsType<SqliteException>(batch[0].Error);
            exclusive.CommandText = "ROLLBACK";
            exclusive.ExecuteNonQuery();
        }

        var again = new StoreBatch();
        again.Add(new StoreOperation(K.Raise, "k", 2));
        store.Execute(again);
        Assert.Equal(StoreStatus.Stored, again[0].Status);
    }

    [Fact]
    public void An_unopenable_file_answers_unavailable()
    {
        var store = new SqliteSharedStore($"Data Source={_folder.File("no/such/dir/x.db")};Mode=ReadWrite");
        var batch = new StoreBatch();
        batch.AddRead("k", TimeSpan.FromSeconds(1));
        store.Execute(batch);
        Assert.Equal(StoreStatus.Unavailable, batch[0].Status);
    }

    [Fact]
    public async Task Cancellation_throws_before_anything_runs()
    {
        var store = new SqliteSharedStore($"Data Source={_folder.File("c.db")}");
        var batch = new StoreBatch();
        batch.AddRead("k");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.ExecuteAsync(batch, new CancellationToken(canceled: true)).AsTask());
        Assert.Equal(StoreStatus.Pending, batch[0].Status);
    }

    private static StoreBatch Build(Op[] steps, List<StoreResult> earlier)
    {
        var batch = new StoreBatch();
        foreach (Op step in steps)
        {
            ulong cas = step.CasFrom < 0 ? 12345 : earlier[step.CasFrom].Cas;
            batch.Add(new StoreOperation(step.Kind, step.Key, step.Value, step.Expected, cas, TimeSpan.FromSeconds(step.TtlSeconds), step.Lease));
        }

        return batch;
    }
}
