using System.Text;
using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>A memcached whose item size limit is 2 MB (<c>-I 2m</c>), so that one key can hold a value above 1 MB.</summary>
public sealed class LargeItemMemcached : IDisposable
{
    public MemcachedServer Server { get; } = MemcachedServer.WithArguments("-I", "2m");

    public void Dispose() => Server.Dispose();
}

/// <summary>
/// A value that is not a token — too large, or bytes of anything — fails its own key only: the rest of the pipeline is
/// read and used, the connection stays open, and the server's circuit breaker does not count it.
/// </summary>
public sealed class BadValueTests(LargeItemMemcached fixture) : IClassFixture<LargeItemMemcached>
{
    private const int BigLength = 1_153_434; // 1.1 MB: above the 1 MB memcached allows by default
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly MemcachedServer _server = fixture.Server;
    private readonly string _prefix = UniquePrefix();

    public static TheoryData<bool> Modes => new() { false, true };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task An_oversized_value_fails_only_its_key_and_the_connection_and_circuit_go_on(bool async)
    {
        string good = _prefix + "good";
        string big = PlantBig();
        Assert.Equal("HD\r\n", _server.Raw($"ms {good} 1 T0\r\n5\r\n"));
        using MemcachedStore store = Store(_server.Address, o =>
        {
            o.OperationTimeout = Timeout;
            o.ConnectTimeout = Timeout;
            o.CircuitBreakerThreshold = 2;
        });
        Assert.Equal(StoreStatus.Hit, Single(store, Read(good)).Status); // the store's one connection is open

        long connectionsBefore = _server.Stat("total_connections");
        for (int round = 0; round < 8; round++)
        {
            var batch = new StoreBatch();
            batch.AddRead(good);
            batch.AddRead(big);
            batch.AddRead(_prefix + "missing");
            batch.Add(Raise($"{_prefix}raised{round}", 8));
            batch.AddRead(good);
            await RunAsync(store, batch, async);

            Assert.Equal((StoreStatus.Hit, 5L), (batch[0].Status, batch[0].Value));
            AssertFailedAlone(batch[1]);
            Assert.Equal(StoreStatus.Miss, batch[2].Status);
            Assert.Equal(StoreStatus.Stored, batch[3].Status);
            Assert.Equal((StoreStatus.Hit, 5L), (batch[4].Status, batch[4].Value));
        }

        Assert.False(store.IsCircuitOpen(store.Servers[0]));
        var after = new StoreBatch();
        after.AddRead(good);
        after.Add(Raise(good, 9));
        await RunAsync(store, after, async);
        Assert.Equal((StoreStatus.Hit, 5L), (after[0].Status, after[0].Value));
        Assert.Equal(StoreStatus.Stored, after[1].Status);

        // Every batch went over the one connection opened before (the Stat call itself is the other one).
        Assert.Equal(connectionsBefore + 1, _server.Stat("total_connections"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task An_oversized_value_is_read_past_and_reported_with_its_length_and_cas_which_a_cas_set_can_replace(bool async)
    {
        string good = _prefix + "good";
        string big = PlantBig();
        Assert.Equal("HD\r\n", _server.Raw($"ms {good} 1 T0\r\n5\r\n"));
        using MetaConnection connection = await MetaConnection.OpenAsync(_server.Endpoint, Timeout, async, CancellationToken.None);

        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Get(good, quiet: true),
            MetaRequest.Get(big, quiet: true),
            MetaRequest.Get(_prefix + "missing", quiet: true),
            MetaRequest.Get(big, quiet: false),
            MetaRequest.Get(good, quiet: true));
        Assert.Equal((MetaStatus.Value, MetaValueKind.Number, 5L), (replies[0].Status, replies[0].ValueKind, replies[0].Number));
        for (int i = 1; i <= 3; i += 2)
        {
            Assert.Equal((MetaStatus.Value, MetaValueKind.Other, BigLength), (replies[i].Status, replies[i].ValueKind, replies[i].ValueLength));
            Assert.NotEqual(0UL, replies[i].Cas);
        }

        Assert.Equal(replies[1].Cas, replies[3].Cas);
        Assert.Equal(MetaStatus.Miss, replies[2].Status);
        Assert.Equal((MetaStatus.Value, 5L), (replies[4].Status, replies[4].Number));

        // Read past, not kept: the receive buffer did not grow to hold the value.
        Assert.True(connection.ReceiveBufferSize < BigLength, $"receive buffer {connection.ReceiveBufferSize} bytes");

        // The CAS read with it lets the item be replaced, over this very connection.
        MetaReply[] replaced = await ExchangeAsync(connection, async, MetaRequest.Set(big, 42, 0, cas: replies[1].Cas, quiet: false), MetaRequest.Get(big, quiet: false));
        Assert.Equal(MetaStatus.Done, replaced[0].Status);
        Assert.Equal((MetaStatus.Value, MetaValueKind.Number, 42L), (replaced[1].Status, replaced[1].ValueKind, replaced[1].Number));
        Assert.False(connection.IsBroken);
    }

    /// <summary>The key's result is its own: not the server's unavailability, not a fault of the connection.</summary>
    internal static void AssertFailedAlone(StoreResult result)
    {
        Assert.NotEqual(StoreStatus.Unavailable, result.Status);
        Assert.NotEqual(StoreStatus.Hit, result.Status);
        Assert.False(result.Error is MemcachedProtocolException or MemcachedUnavailableException, result.Error?.ToString());
    }

    private string PlantBig()
    {
        string key = _prefix + "big";
        Assert.Equal("HD\r\n", _server.Raw($"ms {key} {BigLength} T0\r\n{new string('x', BigLength)}\r\n"));
        return key;
    }

    private static async Task<MetaReply[]> ExchangeAsync(MetaConnection connection, bool async, params MetaRequest[] requests)
    {
        var replies = new MetaReply[requests.Length];
        await connection.ExchangeAsync(requests, requests.Length, replies, party: null, Timeout, async, CancellationToken.None);
        return replies;
    }
}

/// <summary>The same on a scripted server, for value blocks memcached itself would not produce.</summary>
public sealed class BadValueOnScriptedServerTests
{
    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (string name in Blocks.Keys)
        {
            data.Add(name, false);
            data.Add(name, true);
        }

        return data;
    }

    // How the fake server answers the second key with a value block that is well framed but not a token.
    private static readonly Dictionary<string, Func<FakeClient, string, Task>> Blocks = new()
    {
        ["CRLF inside the value"] = (c, o) => c.WriteAsync($"VA 6 c2 {o}\r\nab\r\ncd\r\n"),
        ["control bytes"] = (c, o) => c.WriteAsync($"VA 4 c2 {o}\r\n\x00\x01\x1b\x7f\r\n"),
        ["21 digits"] = (c, o) => c.WriteAsync($"VA 21 c2 {o}\r\n123456789012345678901\r\n"),
        ["a negative number"] = (c, o) => c.WriteAsync($"VA 2 c2 {o}\r\n-5\r\n"),
        ["a line that looks like a reply"] = (c, o) => c.WriteAsync($"VA 4 c2 {o}\r\nMN\r\n\r\n"),
        ["2 MB"] = (c, o) => c.WriteAsync($"VA 2000000 c2 {o}\r\n{new string('y', 2_000_000)}\r\n"),
        ["3 KB in pieces, the CRLF split"] = async (c, o) =>
        {
            await c.WriteAsync($"VA 3000 c2 {o}\r\n{new string('z', 1000)}");
            await Task.Delay(20);
            await c.WriteAsync(new string('z', 2000) + "\r");
            await Task.Delay(20);
            await c.WriteAsync("\n");
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_bad_value_block_fails_only_its_key_and_the_connection_goes_on(string block, bool async)
    {
        Func<FakeClient, string, Task> writeBlock = Blocks[block];
        using var server = new ScriptedServer(async (client, number) =>
        {
            await client.HandshakeAsync();
            while (await client.ReadPipelineAsync() is { } requests)
            {
                foreach (FakeRequest request in requests)
                {
                    if (request.Verb == "mg" && request.Key == "bad")
                    {
                        await writeBlock(client, request.Opaque);
                    }
                    else
                    {
                        await client.WriteAsync(client.Answer(request));
                    }
                }
            }
        });
        server.Items["a"] = "5";
        server.Items["c"] = "9";
        using MemcachedStore store = Store(server.Address, o =>
        {
            o.OperationTimeout = TimeSpan.FromSeconds(10);
            o.ConnectTimeout = TimeSpan.FromSeconds(10);
            o.CircuitBreakerThreshold = 2;
        });

        for (int round = 0; round < 4; round++)
        {
            var batch = new StoreBatch();
            batch.AddRead("a");
            batch.AddRead("bad");
            batch.AddRead("missing");
            batch.AddRead("c");
            await RunAsync(store, batch, async);
            Assert.Equal((StoreStatus.Hit, 5L), (batch[0].Status, batch[0].Value));
            BadValueTests.AssertFailedAlone(batch[1]);
            Assert.Equal(StoreStatus.Miss, batch[2].Status);
            Assert.Equal((StoreStatus.Hit, 9L), (batch[3].Status, batch[3].Value));
        }

        Assert.False(store.IsCircuitOpen(store.Servers[0]));
        Assert.Equal(1, server.Connections);
    }

    [Fact]
    public void The_bytes_of_a_bad_value_are_never_read_as_replies()
    {
        // The value's content is a whole reply to the next key: if the client read it as a reply, 'c' would be 1.
        using var server = new ScriptedServer(async (client, number) =>
        {
            await client.HandshakeAsync();
            List<FakeRequest> requests = (await client.ReadPipelineAsync())!;
            string next = requests[1].Opaque;
            string fake = $"VA 1 c1 {next}\r\n1\r\n";
            await client.WriteAsync($"VA {fake.Length} c2 {requests[0].Opaque}\r\n{fake}\r\n");
            await client.WriteAsync($"VA 1 c3 {next}\r\n9\r\nMN\r\n");
            await client.ServeAsync();
        });
        using MemcachedStore store = Store(server.Address);
        var batch = new StoreBatch();
        batch.AddRead("bad");
        batch.AddRead("c");
        store.Execute(batch);
        BadValueTests.AssertFailedAlone(batch[0]);
        Assert.Equal((StoreStatus.Hit, 9L), (batch[1].Status, batch[1].Value));
    }
}
