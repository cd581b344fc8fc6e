namespace SharedEntities.Memcached.Tests;

/// <summary>Every meta command path of the connection, against a real memcached, synchronously and asynchronously.</summary>
public sealed class MetaConnectionTests(MemcachedServer server) : IClassFixture<MemcachedServer>, IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    private readonly string _prefix = TestSupport.UniquePrefix();
    private readonly List<MetaConnection> _connections = [];

    public static TheoryData<bool> Modes => new() { false, true };

    public void Dispose()
    {
        foreach (MetaConnection connection in _connections)
        {
            connection.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task The_handshake_reads_the_version_and_finds_the_flags_1_6_18_lacks(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        MemcachedServerInfo info = connection.ServerInfo;
        Assert.True(info.Version >= new Version(1, 6), $"version {info.Version}");
        if (info.Version == new Version(1, 6, 18))
        {
            Assert.False(info.SupportsCasOverride);
            Assert.False(info.SupportsValueRemoval);
        }

        // The probes left no item behind.
        Assert.Equal("EN\r\n", server.Raw($"mg {MetaConnection.ProbeKey} v\r\n"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Get_reports_misses_loud_and_quiet_and_values_with_their_cas(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        string key = _prefix + "get";
        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Get(key, quiet: false),
            MetaRequest.Get(key, quiet: true),
            MetaRequest.Set(key, 42, 0, quiet: false),
            MetaRequest.Get(key, quiet: true),
            MetaRequest.Get(key, quiet: false));
        Assert.Equal(MetaStatus.Miss, replies[0].Status);
        Assert.Equal(MetaStatus.Miss, replies[1].Status);
        Assert.Equal(MetaStatus.Done, replies[2].Status);
        Assert.Equal((MetaStatus.Value, MetaValueKind.Number, 42L), (replies[3].Status, replies[3].ValueKind, replies[3].Number));
        Assert.NotEqual(0UL, replies[3].Cas);
        Assert.Equal(replies[3].Cas, replies[4].Cas);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Get_with_a_lease_vivifies_a_placeholder_that_only_the_first_reader_wins(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        string key = _prefix + "lease";
        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Get(key, leaseTtlSeconds: 30),
            MetaRequest.Get(key, leaseTtlSeconds: 30),
            MetaRequest.Get(key));
        Assert.Equal((MetaStatus.Value, MetaValueKind.Empty, true, false), (replies[0].Status, replies[0].ValueKind, replies[0].Won, replies[0].AlreadyWon));
        Assert.Equal((MetaValueKind.Empty, false, true), (replies[1].ValueKind, replies[1].Won, replies[1].AlreadyWon));
        Assert.Equal(replies[0].Cas, replies[1].Cas);
        Assert.Equal(MetaValueKind.Empty, replies[2].ValueKind);
        Assert.Matches(@"^VA 0 t(29|30) Z\r\n", server.Raw($"mg {key} t v\r\n"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Set_by_cas_replaces_only_the_item_read(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        string key = _prefix + "cas";
        MetaReply[] first = await ExchangeAsync(connection, async, MetaRequest.Set(key, 1, 0), MetaRequest.Get(key));
        ulong cas = first[1].Cas;
        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Set(key, 2, 0, cas: cas + 1000),
            MetaRequest.Set(key, 3, 0, cas: cas),
            MetaRequest.Set(key, 4, 0, cas: cas),
            MetaRequest.Set(_prefix + "absent", 5, 0, cas: cas),
            MetaRequest.Get(key));
        Assert.Equal(MetaStatus.Exists, replies[0].Status);
        Assert.Equal(MetaStatus.Done, replies[1].Status);
        Assert.Equal(MetaStatus.Exists, replies[2].Status);
        Assert.Equal(MetaStatus.NotFound, replies[3].Status);
        Assert.Equal(3L, replies[4].Number);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Add_stores_only_when_absent_and_writes_ttl_and_the_tombstone(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        string key = _prefix + "add";
        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Add(key, long.MaxValue, 100),
            MetaRequest.Add(key, 7, 100, quiet: false),
            MetaRequest.Get(key));
        Assert.Equal(MetaStatus.Done, replies[0].Status);
        Assert.Equal(MetaStatus.NotStored, replies[1].Status);
        Assert.Equal((MetaValueKind.Tombstone, long.MaxValue), (replies[2].ValueKind, replies[2].Value));
        Assert.Matches(@"^VA 3 t(99|100)\r\nDEL\r\n$", server.Raw($"mg {key} t v\r\n"));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Increment_counts_misses_and_refuses_the_tombstone_without_breaking_the_pipeline(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        string number = _prefix + "n";
        string tomb = _prefix + "tomb";
        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Set(number, 41, 0),
            MetaRequest.Set(tomb, long.MaxValue, 0),
            MetaRequest.Increment(number),
            MetaRequest.Get(_prefix + "nothing"), // quiet, right before an ma: sent loud so the ma's error is attributable
            MetaRequest.Increment(tomb),
            MetaRequest.Increment(_prefix + "missing"),
            MetaRequest.Get(number));
        Assert.Equal((MetaStatus.Value, 42L), (replies[2].Status, replies[2].Number));
        Assert.NotEqual(0UL, replies[2].Cas);
        Assert.Equal(MetaStatus.Miss, replies[3].Status);
        Assert.Equal(MetaStatus.NonNumeric, replies[4].Status);
        Assert.Equal(MetaStatus.NotFound, replies[5].Status);
        Assert.Equal(42L, replies[6].Number);
        Assert.False(connection.IsBroken);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Delete_removes_by_key_or_by_cas(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        string key = _prefix + "del";
        MetaReply[] first = await ExchangeAsync(connection, async, MetaRequest.Set(key, 1, 0), MetaRequest.Get(key));
        MetaReply[] replies = await ExchangeAsync(connection, async,
            MetaRequest.Delete(key, cas: first[1].Cas + 1000),
            MetaRequest.Delete(key, cas: first[1].Cas),
            MetaRequest.Delete(key),
            MetaRequest.Set(key, 2, 0),
            MetaRequest.Delete(key, quiet: false),
            MetaRequest.Get(key));
        Assert.Equal(MetaStatus.Exists, replies[0].Status);
        Assert.Equal(MetaStatus.Done, replies[1].Status);
        Assert.Equal(MetaStatus.NotFound, replies[2].Status);
        Assert.Equal(MetaStatus.Done, replies[4].Status);
        Assert.Equal(MetaStatus.Miss, replies[5].Status);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Pipelines_of_10000_mixed_requests_span_many_chunks_and_stay_attributed(bool async)
    {
        MetaConnection connection = await OpenAsync(async);
        const int n = 10_000;
        var writes = Enumerable.Range(0, n).Select(i => MetaRequest.Set($"{_prefix}p{i}", i, 0, quiet: i % 3 != 0)).ToArray();
        Assert.All(await ExchangeAsync(connection, async, writes), r => Assert.Equal(MetaStatus.Done, r.Status));

        // Every other key is absent (quiet misses), every fifth request an increment (loud predecessor rule).
        var reads = Enumerable.Range(0, n).Select(i =>
            i % 5 == 4 ? MetaRequest.Increment($"{_prefix}p{i}")
            : i % 2 == 0 ? MetaRequest.Get($"{_prefix}p{i}") : MetaRequest.Get($"{_prefix}absent{i}")).ToArray();
        MetaReply[] replies = await ExchangeAsync(connection, async, reads);
        for (int i = 0; i < n; i++)
        {
            if (i % 5 == 4)
            {
                Assert.Equal((MetaStatus.Value, i + 1L), (replies[i].Status, replies[i].Number));
            }
            else if (i % 2 == 0)
            {
                Assert.Equal((MetaStatus.Value, (long)i), (replies[i].Status, replies[i].Number));
            }
            else
            {
                Assert.Equal(MetaStatus.Miss, replies[i].Status);
            }
        }
    }

    private async Task<MetaConnection> OpenAsync(bool async)
    {
        MetaConnection connection = await MetaConnection.OpenAsync(server.Endpoint, Timeout, async, CancellationToken.None);
        _connections.Add(connection);
        return connection;
    }

    private static async Task<MetaReply[]> ExchangeAsync(MetaConnection connection, bool async, params MetaRequest[] requests)
    {
        var replies = new MetaReply[requests.Length];
        ValueTask exchange = connection.ExchangeAsync(requests, requests.Length, replies, party: null, Timeout, async, CancellationToken.None);
        if (!async)
        {
            Assert.True(exchange.IsCompleted, "The synchronous path must complete before it returns.");
        }

        await exchange;
        return replies;
    }
}
