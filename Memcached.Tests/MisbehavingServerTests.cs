using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// A scripted fake server misbehaves on its first connection: each fault gives a clear failure on the operations in
/// flight (Failed for what it said, Unavailable for what it did not say), and the next operation, on a fresh
/// connection, works.
/// </summary>
public sealed class MisbehavingServerTests
{
    public static TheoryData<string, bool> Faults()
    {
        var data = new TheoryData<string, bool>();
        foreach (string fault in Scripts.Keys)
        {
            data.Add(fault, false);
            data.Add(fault, true);
        }

        return data;
    }

    // What connection 0 does with the first pipeline, what the operations then get, and what the message says.
    private static readonly Dictionary<string, (Func<FakeClient, List<FakeRequest>, Task> Act, StoreStatus Status, string Message)> Scripts = new()
    {
        ["malformed line"] = ((c, r) => c.WriteAsync("XX what\r\n"), StoreStatus.Failed, "malformed reply 'XX what'"),
        ["non-numeric size"] = ((c, r) => c.WriteAsync($"VA abc {r[0].Opaque}\r\n"), StoreStatus.Failed, "value size is not a number"),
        ["value size beyond memcached's largest item"] = ((c, r) => c.WriteAsync($"VA 2147483648 c1 {r[0].Opaque}\r\n"), StoreStatus.Failed, "value size is not a number up to"),
        ["value longer than said"] = ((c, r) => c.WriteAsync($"VA 1 c1 {r[0].Opaque}\r\n12\r\nMN\r\n"), StoreStatus.Failed, "truncated or mis-sized"),
        ["long value longer than said"] = ((c, r) => c.WriteAsync($"VA 2000 c1 {r[0].Opaque}\r\n{new string('x', 2001)}\r\nMN\r\n"), StoreStatus.Failed, "2000-byte value block for mg k1 that is not followed by CRLF"),
        ["value shorter than said"] = ((c, r) => c.WriteAsync($"VA 5 c1 {r[0].Opaque}\r\n12\r\nMN\r\nMN\r\n"), StoreStatus.Failed, "truncated or mis-sized"),
        ["truncated value, then close"] = (async (c, r) => { await c.WriteAsync($"VA 5 c1 {r[0].Opaque}\r\n12"); c.Close(); }, StoreStatus.Unavailable, "closed the connection in the middle of a reply"),
        ["wrong opaque"] = ((c, r) => c.WriteAsync("VA 1 c1 O999999\r\n5\r\nMN\r\n"), StoreStatus.Failed, "opaque O999999"),
        ["reply without opaque to a quiet get"] = ((c, r) => c.WriteAsync("VA 1 c1\r\n5\r\nMN\r\n"), StoreStatus.Failed, "carries no opaque"),
        ["code that does not answer mg"] = ((c, r) => c.WriteAsync($"NS {r[0].Opaque}\r\nMN\r\n"), StoreStatus.Failed, "is not an answer to mg"),
        ["SERVER_ERROR"] = ((c, r) => c.WriteAsync("SERVER_ERROR out of memory storing object\r\n"), StoreStatus.Failed, "SERVER_ERROR out of memory storing object"),
        ["CLIENT_ERROR"] = ((c, r) => c.WriteAsync("CLIENT_ERROR bad command line format\r\n"), StoreStatus.Failed, "CLIENT_ERROR bad command line format"),
        ["ERROR"] = ((c, r) => c.WriteAsync("ERROR\r\n"), StoreStatus.Failed, "answered 'ERROR'"),
        ["bare LF in a line"] = ((c, r) => c.WriteAsync($"VA 1 c1\n{r[0].Opaque}\r\n5\r\nMN\r\n"), StoreStatus.Failed, "bare CR or LF"),
        ["endless line"] = ((c, r) => c.WriteAsync(new string('x', 10_000)), StoreStatus.Failed, "longer than 4096 bytes"),
        ["bytes after the end of the pipeline"] = ((c, r) => c.WriteAsync($"VA 1 c1 {r[0].Opaque}\r\n5\r\nMN\r\nEN\r\n"), StoreStatus.Failed, "sent 'EN\\x0D\\x0A' after the end of the pipeline"),
        ["reset after the first reply"] = (async (c, r) => { await c.WriteAsync($"VA 1 c1 {r[0].Opaque}\r\n5\r\n"); await Task.Delay(50); c.Reset(); }, StoreStatus.Unavailable, "failed during 2 pipelined requests"),
        ["reset mid-reply"] = (async (c, r) => { await c.WriteAsync($"VA 2 c1 {r[0].Opaque}\r\n"); await Task.Delay(50); c.Reset(); }, StoreStatus.Unavailable, "failed during 2 pipelined requests"),
        ["close before answering"] = ((c, r) => { c.Close(); return Task.CompletedTask; }, StoreStatus.Unavailable, "closed the connection before answering"),
        ["never answers"] = (async (c, r) => await c.ReadPipelineAsync(), StoreStatus.Unavailable, "did not answer 2 pipelined requests within"),
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task A_fault_fails_the_operations_in_flight_clearly_and_the_next_operation_works(string fault, bool async)
    {
        (Func<FakeClient, List<FakeRequest>, Task> act, StoreStatus status, string message) = Scripts[fault];
        using var server = new ScriptedServer(async (client, number) =>
        {
            await client.HandshakeAsync();
            if (number == 0)
            {
                await act(client, (await client.ReadPipelineAsync())!);
                return;
            }

            await client.ServeAsync();
        });
        server.Items["good"] = "7";
        using MemcachedStore store = Store(server.Address, o =>
        {
            // Only the silent server needs a short timeout; elsewhere a slow test machine must not turn a fault into a timeout.
            o.OperationTimeout = fault == "never answers" ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromSeconds(10);
            o.ConnectTimeout = TimeSpan.FromSeconds(10);
            o.CircuitBreakerThreshold = 100;
        });

        var batch = new StoreBatch();
        batch.AddRead("k1");
        batch.AddRead("k2");
        await RunAsync(store, batch, async);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(status, batch[i].Status);
            Exception error = Assert.IsAssignableFrom<MemcachedException>(batch[i].Error);
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
            Assert.Contains(server.Address, error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(status == StoreStatus.Failed, batch[0].Error is MemcachedProtocolException);
        Assert.Equal(fault == "never answers", batch[0].Error is MemcachedTimeoutException);

        var next = new StoreBatch();
        next.AddRead("good");
        next.AddRead("k3");
        await RunAsync(store, next, async);
        Assert.Equal((StoreStatus.Hit, 7L), (next[0].Status, next[0].Value));
        Assert.Equal(StoreStatus.Miss, next[1].Status);
        Assert.Equal(2, server.Connections);
    }

    [Fact]
    public async Task Cancelling_a_hung_exchange_throws_promptly_and_the_next_operation_works()
    {
        using var server = new ScriptedServer(async (client, number) =>
        {
            await client.HandshakeAsync();
            if (number == 0)
            {
                await client.ReadPipelineAsync();
                await client.ReadPipelineAsync(); // Never answers; returns when the client hangs up.
                return;
            }

            await client.ServeAsync();
        });
        using MemcachedStore store = Store(server.Address, o => o.OperationTimeout = TimeSpan.FromSeconds(30));
        var batch = new StoreBatch();
        batch.AddRead("k");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await store.ExecuteAsync(batch, cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"cancellation took {clock.Elapsed}");
        Assert.Equal(StoreStatus.Miss, Single(store, Read("k")).Status);
        Assert.False(store.IsCircuitOpen(store.Servers[0]));
    }

    [Fact]
    public void A_missing_cas_fails_only_that_operation_and_keeps_the_connection()
    {
        using var server = new ScriptedServer(async (client, number) =>
        {
            await client.HandshakeAsync();
            List<FakeRequest> requests = (await client.ReadPipelineAsync())!;
            await client.WriteAsync($"VA 1 {requests[0].Opaque}\r\n5\r\nMN\r\n");
            await client.ServeAsync();
        });
        using MemcachedStore store = Store(server.Address);
        StoreResult result = Single(store, Read("k"));
        Assert.Equal(StoreStatus.Failed, result.Status);
        Assert.Contains("without the CAS", result.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(StoreStatus.Miss, Single(store, Read("k")).Status);
        Assert.Equal(1, server.Connections);
    }

    [Theory]
    [InlineData("VERSION 1.4.39\r\nERROR\r\nERROR\r\nERROR\r\n", "is version 1.4.39, which does not speak the meta protocol")]
    [InlineData("HTTP/1.1 400 Bad Request\r\n\r\n\r\n\r\n", "does not look like memcached")]
    public void A_server_that_is_not_a_meta_memcached_is_refused_at_connect(string greeting, string message)
    {
        using var server = new ScriptedServer(async (client, _) =>
        {
            await client.ReadPipelineAsync();
            await client.WriteAsync(greeting);
            await client.ReadPipelineAsync();
        });
        using MemcachedStore store = Store(server.Address);
        StoreResult result = Single(store, Read("k"));
        Assert.Equal(StoreStatus.Failed, result.Status);
        Assert.Contains(message, result.Error!.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_server_whose_backlog_is_full_times_out_at_connect(bool async)
    {
        // A listener that never accepts, with its one-slot backlog taken: the kernel drops further SYNs.
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen(0);
        var address = (System.Net.IPEndPoint)listener.LocalEndPoint!;
        using var held = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        held.Connect(address);

        using MemcachedStore store = Store($"127.0.0.1:{address.Port}", o => o.ConnectTimeout = TimeSpan.FromMilliseconds(200));
        var batch = new StoreBatch();
        batch.AddRead("k");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await RunAsync(store, batch, async);
        Assert.Equal(StoreStatus.Unavailable, batch[0].Status);
        Assert.IsType<MemcachedTimeoutException>(batch[0].Error);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_server_that_accepts_but_never_greets_times_out_at_connect()
    {
        using var server = new ScriptedServer((client, _) => client.ReadPipelineAsync());
        using MemcachedStore store = Store(server.Address, o => o.ConnectTimeout = TimeSpan.FromMilliseconds(200));
        StoreResult result = Single(store, Read("k"));
        Assert.Equal(StoreStatus.Unavailable, result.Status);
        Assert.IsType<MemcachedTimeoutException>(result.Error);
        Assert.Contains("version handshake", result.Error!.Message, StringComparison.Ordinal);
    }
}
