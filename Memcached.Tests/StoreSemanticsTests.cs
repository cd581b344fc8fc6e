using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>Three memcached servers shared by the tests of a class.</summary>
public sealed class ThreeServers : IDisposable
{
    public MemcachedServer[] Servers { get; } = [new(), new(), new()];

    public string One => Servers[0].Address;

    public string All => string.Join(",", Servers.Select(s => s.Address));

    public void Dispose()
    {
        foreach (MemcachedServer server in Servers)
        {
            server.Dispose();
        }
    }
}

/// <summary>
/// The same scripted batches applied to <see cref="InMemorySharedStore"/> (the reference semantics) and to
/// <see cref="MemcachedStore"/> give the same statuses and values, operation by operation.
/// </summary>
public sealed class StoreSemanticsTests(ThreeServers servers) : IClassFixture<ThreeServers>
{
    // In a Fill, this CAS stands for "the lease CAS this store handed out for the key".
    private const ulong LeaseCas = ulong.MaxValue;

    public static TheoryData<int, bool> Configurations => new() { { 1, false }, { 1, true }, { 3, false }, { 3, true } };

    private static List<StoreOperation[]> Script(string p) =>
    [
        // Leases: a miss, the winner, a loser; the same key three times in one batch keeps its order.
        [Read(p + "a"), LeaseRead(p + "a"), LeaseRead(p + "a"), Read(p + "a")],
        [Fill(p + "a", 5, LeaseCas), Fill(p + "a", 6, 12345), Read(p + "a"), LeaseRead(p + "a")],

        // Raise: add on a miss, refuse to go down, go up.
        [Raise(p + "b", 10), Raise(p + "b", 7), Raise(p + "b", 10), Raise(p + "b", 12), Read(p + "b")],

        // Publish never adds; AddIfAbsent adds once; publish replaces only the expected token.
        [Publish(p + "c", 1, 3), Read(p + "c"), Add(p + "c", 1), Add(p + "c", 2), Publish(p + "c", 1, 3), Publish(p + "c", 1, 5), Read(p + "c")],

        // Increment: a miss stores nothing; then counts.
        [Increment(p + "d"), Read(p + "d"), Add(p + "d", 41), Increment(p + "d"), Increment(p + "d"), Read(p + "d")],

        // The tombstone is above everything, reads back as long.MaxValue and is never incremented.
        [Raise(p + "e", 9), Raise(p + "e", long.MaxValue), Read(p + "e"), Raise(p + "e", 100), Publish(p + "e", 9, 11), Increment(p + "e"), Read(p + "e")],

        // A raise replaces a lease placeholder; the old lease can no longer fill.
        [LeaseRead(p + "f")],
        [Raise(p + "f", 8), Read(p + "f"), Fill(p + "f", 7, LeaseCas), Read(p + "f")],

        // A placeholder is nothing to increment, to add over, or to publish over; plain reads see a miss.
        [LeaseRead(p + "g")],
        [Increment(p + "g"), Add(p + "g", 3), Publish(p + "g", 0, 4), Read(p + "g"), LeaseRead(p + "g")],

        // Negative tokens (serials are random 64-bit) compare as signed and increment across the sign.
        [Raise(p + "h", -5), Read(p + "h"), Raise(p + "h", -3), Raise(p + "h", -4), Increment(p + "h"), Read(p + "h")],
        [Add(p + "i", -1), Increment(p + "i"), Read(p + "i"), Add(p + "j", long.MinValue), Read(p + "j"), Raise(p + "j", long.MinValue + 1)],

        // Fills without a lease: CAS 0 and a made-up CAS store nothing.
        [Fill(p + "k", 1, 0), Fill(p + "k", 1, 777), Read(p + "k"), Raise(p + "k", 2), Fill(p + "k", 3, 0), Fill(p + "k", 3, 999999)],

        // Many keys in one batch, spread over every server.
        [.. Enumerable.Range(0, 40).Select(i => Raise($"{p}m{i}", i))],
        [.. Enumerable.Range(0, 40).SelectMany(i => new[] { Raise($"{p}m{i}", 20), Read($"{p}m{i}") })],
        [.. Enumerable.Range(0, 40).Select(i => i % 2 == 0 ? Publish($"{p}m{i}", 20, 21) : Increment($"{p}m{i}"))],
        [.. Enumerable.Range(0, 40).Select(i => Read($"{p}m{i}"))],
    ];

    [Theory]
    [MemberData(nameof(Configurations))]
    public async Task Every_operation_matches_the_in_memory_store(int serverCount, bool async)
    {
        string prefix = UniquePrefix();
        var reference = new InMemorySharedStore();
        using MemcachedStore memcached = Store(serverCount == 1 ? servers.One : servers.All);
        var referenceLeases = new Dictionary<string, ulong>();
        var memcachedLeases = new Dictionary<string, ulong>();

        int step = 0;
        foreach (StoreOperation[] operations in Script(prefix))
        {
            StoreBatch expected = await RunAsync(reference, operations, referenceLeases, async);
            StoreBatch actual = await RunAsync(memcached, operations, memcachedLeases, async);
            for (int i = 0; i < operations.Length; i++)
            {
                StoreResult e = expected[i];
                StoreResult a = actual[i];
                string where = $"batch {step}, operation {i} ({operations[i].Kind} {operations[i].Key[prefix.Length..]} value {operations[i].Value})";
                Assert.False(a.IsFailure, $"{where}: {a.Status} {a.Error}");
                Assert.True(e.Status == a.Status, $"{where}: expected {e.Status}, memcached gave {a.Status}");
                Assert.True(e.Value == a.Value, $"{where}: expected value {e.Value}, memcached gave {a.Value}");
                if (a.Status is StoreStatus.LeaseWon or StoreStatus.LeaseLost or StoreStatus.Hit)
                {
                    Assert.NotEqual(0UL, a.Cas);
                }
            }

            step++;
        }
    }

    [Fact]
    public void The_script_checks_what_it_says()
    {
        // Spot checks of the reference itself, so that the comparison above cannot pass on two wrong stores.
        string p = UniquePrefix();
        var store = new InMemorySharedStore();
        Assert.Equal(StoreStatus.LeaseWon, Single(store, LeaseRead(p + "a")).Status);
        Assert.Equal(StoreStatus.LeaseLost, Single(store, LeaseRead(p + "a")).Status);
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(p + "b", 10)).Status);
        Assert.Equal((StoreStatus.NotStored, 10L), (Single(store, Raise(p + "b", 7)) is var r ? (r.Status, r.Value) : default));
        Assert.Equal(StoreStatus.NotStored, Single(store, Publish(p + "c", 0, 1)).Status);
        Assert.Equal(StoreStatus.Miss, Single(store, Increment(p + "d")).Status);
    }

    [Fact]
    public void An_increment_of_the_tombstone_is_refused()
    {
        // On the wire: memcached cannot increment "DEL", so a deleted entity's serial stays deleted.
        string key = UniquePrefix() + "tomb";
        using MemcachedStore store = Store(servers.One);
        Assert.Equal(StoreStatus.Stored, Single(store, Raise(key, long.MaxValue)).Status);
        StoreResult result = Single(store, Increment(key));
        Assert.Equal(StoreStatus.NotStored, result.Status);
        Assert.Equal(long.MaxValue, result.Value);
        Assert.Equal(long.MaxValue, Single(store, Read(key)).Value);
        Assert.Contains("VA 3", servers.Servers[0].Raw($"mg {key} v\r\n"), StringComparison.Ordinal);
    }

    private static async Task<StoreBatch> RunAsync(ISharedStore store, StoreOperation[] operations, Dictionary<string, ulong> leases, bool async)
    {
        var batch = new StoreBatch();
        foreach (StoreOperation operation in operations)
        {
            batch.Add(operation.Cas == LeaseCas ? operation with { Cas = leases.GetValueOrDefault(operation.Key) } : operation);
        }

        await TestSupport.RunAsync(store, batch, async);
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch[i].Status == StoreStatus.LeaseWon)
            {
                leases[operations[i].Key] = batch[i].Cas;
            }
        }

        return batch;
    }
}
