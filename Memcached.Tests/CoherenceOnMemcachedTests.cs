using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SharedEntities.InMemory;
using SharedEntities.Protocol;
using SharedEntities.Tests.Support;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

[SharedEntity]
public partial class Doc
{
    public string Id { get; set; } = "";

    public long Version { get; set; }

    public partial string Title { get; set; }
}

/// <summary>
/// The whole protocol on real memcached servers: runtimes playing processes share one database double and one
/// <see cref="MemcachedStore"/> each, and memcached is restarted, killed and flooded under them.
/// </summary>
public sealed class CoherenceOnMemcachedTests
{
    private const int Sheets = 60;

    [Fact]
    public async Task A_scope_checks_its_entities_in_one_round_trip_per_server()
    {
        using var servers = new ThreeServers();
        using var rig = new Rig(servers.All);
        Sheet[] inB = rig.B.LoadAll();
        await rig.B.CheckAllAsync(inB); // first scope: fills every token

        await rig.A.RenameAsync([.. Enumerable.Range(0, 10)], "renamed");
        using var recorder = new MetricsRecorder();
        await using (FreshScope scope = rig.B.Coherence.BeginScope())
        {
            await scope.CheckAsync(inB);
            Assert.All(inB, sheet => Assert.Equal(sheet.Id < 10 ? $"renamed {sheet.Id}" : $"sheet {sheet.Id}", sheet.Title));
        }

        foreach (MemcachedServer server in servers.Servers)
        {
            Assert.Equal(1, recorder.Get("round_trips", server.Address));
        }
    }

    [Fact]
    public async Task After_a_restart_every_entity_is_validated_through_the_database_and_none_is_accepted_stale()
    {
        using var server = new MemcachedServer();
        using var rig = new Rig(server.Address);
        Sheet[] inB = rig.B.LoadAll();
        await rig.B.CheckAllAsync(inB);
        await rig.A.RenameAsync([.. Enumerable.Range(0, Sheets / 2)], "before restart");

        server.Restart();
        await rig.B.CheckAllAsync(inB);
        Assert.All(inB, sheet => Assert.Equal(sheet.Id < Sheets / 2 ? $"before restart {sheet.Id}" : $"sheet {sheet.Id}", sheet.Title));

        // Commits after the restart are seen too: the refilled tokens came from locked database reads.
        await rig.A.RenameAsync([.. Enumerable.Range(Sheets / 2, 10)], "after restart");
        await rig.B.CheckAllAsync(inB);
        Assert.All(inB, sheet => Assert.Equal(rig.Database.ValueOf("Sheet", sheet.Id, 0), sheet.Title));
    }

    [Fact]
    public async Task A_dead_node_sends_its_entities_to_the_database_refuses_their_commits_and_is_used_again_when_back()
    {
        using var servers = new ThreeServers();
        using var rig = new Rig(servers.All, configure: o => o.CircuitBreakerCooldown = TimeSpan.FromMilliseconds(200));
        Sheet[] inB = rig.B.LoadAll();
        await rig.B.CheckAllAsync(inB);
        await rig.A.RenameAsync([.. Enumerable.Range(0, Sheets)], "v2");

        MemcachedServer dead = servers.Servers[1];
        dead.Kill();
        long fallbacks = await CountedAsync(rig.B.Metrics.Fallbacks, () => rig.B.CheckAllAsync(inB));

        Assert.All(inB, sheet => Assert.Equal($"v2 {sheet.Id}", sheet.Title));
        int onDeadNode = inB.Count(sheet => rig.B.ServerOf(sheet) == dead.Address);
        Assert.InRange(onDeadNode, 1, Sheets - 1);
        Assert.Equal(onDeadNode, fallbacks);

        // Writes: an entity on the dead node is refused (its dirty token cannot be raised); the others commit.
        Sheet onDead = inB.First(sheet => rig.B.ServerOf(sheet) == dead.Address);
        Sheet onLive = inB.First(sheet => rig.B.ServerOf(sheet) != dead.Address);
        await Assert.ThrowsAsync<SharedStoreUnavailableException>(() => rig.B.RenameAsync(onDead, "refused"));
        Assert.Equal($"v2 {onDead.Id}", rig.Database.ValueOf("Sheet", onDead.Id, 0));
        await rig.B.RenameAsync(onLive, "committed");
        Assert.Equal("committed", rig.Database.ValueOf("Sheet", onLive.Id, 0));

        // Back: after the breaker's cool-down the node answers again, empty, and its tokens are refilled.
        dead.Start();
        Assert.True(await EventuallyAsync(
            async () => await CountedAsync(rig.B.Metrics.Fallbacks, () => rig.B.CheckAllAsync(inB)) == 0,
            TimeSpan.FromSeconds(10)));
        Assert.All(inB, sheet => Assert.Equal(rig.Database.ValueOf("Sheet", sheet.Id, 0), sheet.Title));
    }

    [Fact]
    public async Task Entities_are_checked_and_committed_over_tls_with_authentication()
    {
        using var secure = new SecureMemcached();
        using var rig = new Rig(secure.Server.Address, secure.Configure);
        Sheet[] inB = rig.B.LoadAll();
        await rig.B.CheckAllAsync(inB); // fills every token
        await rig.A.RenameAsync([.. Enumerable.Range(0, 10)], "renamed");

        using var fallbackCount = new MetricCollector<long>(rig.B.Metrics.Fallbacks);
        using var reloadCount = new MetricCollector<long>(rig.B.Metrics.Reloads);
        await rig.B.CheckAllAsync(inB);
        long fallbacks = fallbackCount.GetMeasurementSnapshot().EvaluateAsCounter();
        long reloads = reloadCount.GetMeasurementSnapshot().EvaluateAsCounter();

        Assert.All(inB, sheet => Assert.Equal(sheet.Id < 10 ? $"renamed {sheet.Id}" : $"sheet {sheet.Id}", sheet.Title));
        Assert.Equal(0, fallbacks); // the store vouched for every entity
        Assert.Equal(10, reloads);

        await rig.B.RenameAsync(inB[20], "by B");
        Sheet[] inA = rig.A.LoadAll();
        await rig.A.CheckAllAsync(inA);
        Assert.Equal("by B", inA[20].Title);
    }

    [Fact]
    public async Task A_process_with_a_wrong_password_reads_through_the_database_and_its_commits_are_refused()
    {
        using var secure = new SecureMemcached();
        using var rig = new Rig(secure.Server.Address, secure.Configure, configureB: o => o.Password = "wrong-password");
        Sheet[] inB = rig.B.LoadAll();
        await rig.A.RenameAsync([.. Enumerable.Range(0, Sheets)], "v2");

        long fallbacks = await CountedAsync(rig.B.Metrics.Fallbacks, () => rig.B.CheckAllAsync(inB));

        Assert.All(inB, sheet => Assert.Equal($"v2 {sheet.Id}", sheet.Title));
        Assert.Equal(Sheets, fallbacks);
        await Assert.ThrowsAsync<SharedStoreUnavailableException>(() => rig.B.RenameAsync(inB[0], "refused"));
        Assert.Equal("v2 0", rig.Database.ValueOf("Sheet", 0, 0));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_longest_prefix_with_a_long_plain_key_is_read_and_committed(bool hashKeys)
    {
        // 64 + "Doc:" + 190 characters of plain key: 258 bytes as they are, more than memcached's 250.
        using var server = new MemcachedServer();
        using MemcachedStore store = Store(server.Address);
        var options = new CoherenceOptions { KeyPrefix = new string('p', StoreKeys.MaxPrefixLength), HashKeys = hashKeys };
        using var coherence = new Coherence(store, options);
        var database = new InMemoryEntityDatabase();
        string id = new('k', 190);
        database.Insert(new Doc { Id = id, Version = 1, Title = "first" });
        InMemoryEntityConnection connection = database.Connect(coherence);
        Doc doc = connection.Find<Doc>(id)!;

        await coherence.RunInScopeAsync((_, _) =>
        {
            Assert.Equal("first", doc.Title);
            doc.Title = "second";
            return Task.CompletedTask;
        });

        string key = coherence.StoreKeyOf(doc);
        Assert.InRange(key.Length, 1, StoreKeys.MaxKeyLength);
        Assert.DoesNotContain(id, key, StringComparison.Ordinal); // too long to be kept as it is: hashed either way
        Assert.Contains($"VA {SharedToken.Clean(2).Value.ToString(System.Globalization.CultureInfo.InvariantCulture).Length}", server.Raw($"mg {key} v\r\n"), StringComparison.Ordinal);
        Assert.Equal("second", database.ValueOf("Doc", id, 0));
    }

    [Fact]
    public async Task Evicted_tokens_are_misses_never_fresh()
    {
        using var server = MemcachedServer.Create(memoryMb: 2);
        using var rig = new Rig(server.Address);
        Sheet[] inB = rig.B.LoadAll();
        await rig.B.CheckAllAsync(inB);
        await rig.A.RenameAsync([.. Enumerable.Range(0, Sheets)], "v2");
        await rig.B.CheckAllAsync(inB); // every token is clean(2) now, and B holds version 2

        // A writer commits version 3 of every sheet, then filler keys push the tokens out.
        await rig.A.RenameAsync([.. Enumerable.Range(0, Sheets)], "v3");
        string filler = new('x', 16 * 1024);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 20_000 && server.Stat("evictions") < Sheets && !deadline.IsCancellationRequested; i++)
        {
            server.Raw($"ms {UniquePrefix()}filler{i} {filler.Length} T0 q\r\n{filler}\r\n");
        }

        Assert.True(server.Stat("evictions") > 0, "the flood evicted nothing");
        await rig.B.CheckAllAsync(inB);
        Assert.All(inB, sheet => Assert.Equal($"v3 {sheet.Id}", sheet.Title));
    }

    // What counter recorded while action ran.
    private static async Task<long> CountedAsync(Counter<long> counter, Func<Task> action)
    {
        using var collector = new MetricCollector<long>(counter);
        await action();
        return collector.GetMeasurementSnapshot().EvaluateAsCounter();
    }

    /// <summary>One database double with <see cref="Sheets"/> sheets and two "processes", each with its own memcached client.</summary>
    private sealed class Rig : IDisposable
    {
        public Rig(string servers, Action<MemcachedClientOptions>? configure = null, Action<MemcachedClientOptions>? configureB = null)
        {
            for (int id = 0; id < Sheets; id++)
            {
                Database.Insert(new Sheet { Id = id, Version = 1, Title = $"sheet {id}" });
            }

            A = new Process(Database, Store(servers, configure));
            B = new Process(Database, Store(servers, o =>
            {
                configure?.Invoke(o);
                configureB?.Invoke(o);
            }));
        }

        public InMemoryEntityDatabase Database { get; } = new();

        public Process A { get; }

        public Process B { get; }

        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
        }
    }

    private sealed class Process : IDisposable
    {
        private readonly MemcachedStore _store;
        private readonly InMemoryEntityConnection _connection;

        public Process(InMemoryEntityDatabase database, MemcachedStore store)
        {
            _store = store;
            Coherence = new Coherence(store, metrics: Metrics);
            _connection = database.Connect(Coherence);
        }

        public SharedEntitiesMetrics Metrics { get; } = new();

        public Coherence Coherence { get; }

        public Sheet[] LoadAll() => [.. Enumerable.Range(0, Sheets).Select(id => _connection.Find<Sheet>(id)!)];

        public string ServerOf(Sheet sheet) => _store.GetServer(Coherence.StoreKeyOf(sheet)).Address;

        public async Task CheckAllAsync(Sheet[] sheets)
        {
            await using FreshScope scope = Coherence.BeginScope();
            await scope.CheckAsync(sheets);
        }

        public Task RenameAsync(int[] ids, string prefix) =>
            Coherence.RunInScopeAsync((_, _) =>
            {
                foreach (int id in ids)
                {
                    _connection.Find<Sheet>(id)!.Title = $"{prefix} {id}";
                }

                return Task.CompletedTask;
            });

        public async Task RenameAsync(Sheet sheet, string title)
        {
            await using FreshScope scope = Coherence.BeginScope();
            sheet.Title = title;
            await scope.CommitAsync();
        }

        public void Dispose()
        {
            Coherence.Dispose();
            Metrics.Dispose();
            _store.Dispose();
        }
    }
}
