using Microsoft.Extensions.Logging.Testing;
using System.Net.Security;
using SharedEntities.Stores;
using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// TLS and authentication against a real memcached started with <c>-Z</c> and <c>-Y</c>: everything works through
/// them, and each misconfiguration fails every operation as unavailable with an exception that names the cause.
/// </summary>
public sealed class SecureMemcachedTests(SecureMemcached fixture) : IClassFixture<SecureMemcached>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly MemcachedServer _server = fixture.Server;
    private readonly string _prefix = UniquePrefix();

    public static TheoryData<bool> Modes => new() { false, true };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Every_operation_works_over_tls_with_authentication(bool async)
    {
        using MemcachedStore store = Store(_server.Address, fixture.Configure);
        string key = _prefix + "k";
        var batch = new StoreBatch();
        batch.Add(Raise(key, 8));
        batch.AddRead(_prefix + "missing", TimeSpan.FromSeconds(30));
        await RunAsync(store, batch, async);
        Assert.Equal(StoreStatus.Stored, batch[0].Status);
        Assert.Equal(StoreStatus.LeaseWon, batch[1].Status);

        var next = new StoreBatch();
        next.AddRead(key);
        next.Add(Publish(key, 8, 9));
        next.Add(Fill(_prefix + "missing", 4, batch[1].Cas));
        next.Add(Add(_prefix + "added", 3));
        await RunAsync(store, next, async);
        Assert.Equal((StoreStatus.Hit, 8L), (next[0].Status, next[0].Value));
        Assert.Equal(StoreStatus.Stored, next[1].Status);
        Assert.Equal(StoreStatus.Stored, next[2].Status);
        Assert.Equal(StoreStatus.Stored, next[3].Status);

        Assert.Equal((StoreStatus.Hit, 9L), (Single(store, Read(key)).Status, Single(store, Read(key)).Value));
        Assert.Equal(StoreStatus.Stored, Single(store, Increment(key)).Status);
        Assert.Equal(10L, Single(store, Read(key)).Value);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_pipeline_of_many_chunks_goes_through_tls(bool async)
    {
        using MemcachedStore store = Store(_server.Address, fixture.Configure);
        const int keys = 4000; // about 200 KB of requests: several 32 KB chunks in flight over TLS
        var raises = new StoreBatch();
        for (int i = 0; i < keys; i++)
        {
            raises.Add(Raise($"{_prefix}chunked:{i:D5}", i + 1));
        }

        await RunAsync(store, raises, async);
        Assert.All(Enumerable.Range(0, keys), i => Assert.Equal(StoreStatus.Stored, raises[i].Status));

        var reads = new StoreBatch();
        for (int i = 0; i < keys; i++)
        {
            reads.AddRead($"{_prefix}chunked:{i:D5}");
        }

        await RunAsync(store, reads, async);
        Assert.All(Enumerable.Range(0, keys), i => Assert.Equal((StoreStatus.Hit, i + 1L), (reads[i].Status, reads[i].Value)));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_tls_connection_is_reused_after_its_exchanges(bool async)
    {
        var options = new MemcachedClientOptions();
        fixture.Configure(options);
        using MetaConnection connection = await MetaConnection.OpenAsync(_server.Endpoint, Timeout, ConnectionSecurity.From(options), async, CancellationToken.None);
        Assert.Equal(new Version(1, 6, 18), connection.ServerInfo.Version);
        for (int round = 0; round < 3; round++)
        {
            var replies = new MetaReply[2];
            MetaRequest[] requests = [MetaRequest.Set(_prefix + "reuse", round, 0, quiet: false), MetaRequest.Get(_prefix + "reuse", quiet: false)];
            await connection.ExchangeAsync(requests, 2, replies, party: null, Timeout, async, CancellationToken.None);
            Assert.Equal((MetaStatus.Value, (long)round), (replies[1].Status, replies[1].Number));

            // Nothing left unread on the socket (TLS session tickets included): the pool keeps the connection.
            Assert.True(connection.IsReusable);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_wrong_password_is_refused_as_an_authentication_error_that_does_not_show_it(bool async)
    {
        var logger = new FakeLogger<MemcachedStore>();
        const string wrong = "not-the-password";
        using MemcachedStore store = Store(_server.Address, o =>
        {
            fixture.Configure(o);
            o.Password = wrong;
        }, logger);
        var batch = new StoreBatch();
        batch.AddRead(_prefix + "k");
        batch.Add(Raise(_prefix + "k", 5));
        await RunAsync(store, batch, async);

        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(StoreStatus.Unavailable, batch[i].Status);
            MemcachedAuthenticationException error = Assert.IsType<MemcachedAuthenticationException>(batch[i].Error);
            Assert.Contains("refused the authentication", error.Message, StringComparison.Ordinal);
            Assert.Contains("CLIENT_ERROR", error.Message, StringComparison.Ordinal);
        }

        // The next attempt waits for the reconnect backoff instead of connecting again at once.
        StoreResult again = Single(store, Read(_prefix + "k"));
        Assert.Equal(StoreStatus.Unavailable, again.Status);
        Assert.Contains("Not reconnecting", again.Error!.Message, StringComparison.Ordinal);
        Assert.IsType<MemcachedAuthenticationException>(again.Error.InnerException);

        Assert.True(Logged(logger, "failed on TLS or authentication"));
        foreach (string text in logger.Collector.GetSnapshot().Select(e => e.Message).Append(batch[0].Error!.ToString()).Append(again.Error.ToString()))
        {
            Assert.DoesNotContain(wrong, text, StringComparison.Ordinal);
            Assert.DoesNotContain(fixture.Material.Password, text, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task No_credentials_for_a_server_that_requires_them_says_so(bool async)
    {
        StoreResult result = await ReadOnceAsync(async, o => (o.Username, o.Password) = (null, null));
        Assert.Equal(StoreStatus.Unavailable, result.Status);
        MemcachedAuthenticationException error = Assert.IsType<MemcachedAuthenticationException>(result.Error);
        Assert.Contains("requires authentication", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task An_untrusted_certificate_is_refused_and_the_message_says_why(bool async)
    {
        StoreResult result = await ReadOnceAsync(async, o => o.Tls = new MemcachedTlsOptions()); // the system's roots, without the test's certificate
        Assert.Equal(StoreStatus.Unavailable, result.Status);
        MemcachedTlsException error = Assert.IsType<MemcachedTlsException>(result.Error);
        Assert.Equal(SslPolicyErrors.RemoteCertificateChainErrors, error.PolicyErrors);
        Assert.Contains("was not trusted: RemoteCertificateChainErrors", error.Message, StringComparison.Ordinal);
        Assert.Contains("UntrustedRoot", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_certificate_for_another_name_is_refused_as_a_name_mismatch(bool async)
    {
        StoreResult result = await ReadOnceAsync(async, o => o.Tls!.TargetHost = "memcached.example");
        MemcachedTlsException error = Assert.IsType<MemcachedTlsException>(result.Error);
        Assert.Equal(SslPolicyErrors.RemoteCertificateNameMismatch, error.PolicyErrors);
        Assert.Contains("RemoteCertificateNameMismatch", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_callback_that_trusts_the_test_certificate_lets_the_connection_through(bool async)
    {
        string expected = fixture.Material.Certificate.GetCertHashString();
        SslPolicyErrors seen = SslPolicyErrors.None;
        using MemcachedStore store = Store(_server.Address, o =>
        {
            fixture.Configure(o);
            o.Tls = new MemcachedTlsOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    seen = errors;
                    return certificate?.GetCertHashString() == expected;
                },
            };
        });
        var batch = new StoreBatch();
        batch.Add(Raise(_prefix + "k", 3));
        await RunAsync(store, batch, async);
        Assert.Equal(StoreStatus.Stored, batch[0].Status);
        Assert.Equal(SslPolicyErrors.RemoteCertificateChainErrors, seen); // the callback decided, against the default check
    }

    [Fact]
    public void A_callback_that_throws_refuses_the_certificate_and_the_store_does_not_throw()
    {
        using MemcachedStore store = Store(_server.Address, o =>
        {
            fixture.Configure(o);
            o.Tls = new MemcachedTlsOptions { RemoteCertificateValidationCallback = (_, _, _, _) => throw new InvalidOperationException("no opinion") };
        });
        StoreResult result = Single(store, Read(_prefix + "k"));
        Assert.Equal(StoreStatus.Unavailable, result.Status);
        MemcachedTlsException error = Assert.IsType<MemcachedTlsException>(result.Error);
        Assert.Contains("RemoteCertificateValidationCallback threw InvalidOperationException: no opinion", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_plain_client_to_a_tls_server_is_told_that_the_server_requires_tls(bool async)
    {
        StoreResult result = await ReadOnceAsync(async, o => o.Tls = null);
        Assert.Equal(StoreStatus.Unavailable, result.Status);
        Assert.IsNotType<MemcachedTimeoutException>(result.Error); // told, not left to wait for the timeout
        Assert.Contains("requires TLS (started with -Z)", result.Error!.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_tls_client_to_a_plain_server_is_told_that_the_server_does_not_speak_tls(bool async)
    {
        using var plain = new MemcachedServer();
        StoreResult result = await ReadOnceAsync(async, _ => { }, plain.Address);
        Assert.Equal(StoreStatus.Unavailable, result.Status);
        MemcachedTlsException error = Assert.IsType<MemcachedTlsException>(result.Error);
        Assert.Contains("does not speak TLS", error.Message, StringComparison.Ordinal);
    }

    // One read through a store of the fixture's settings as changed by 'change'.
    private async Task<StoreResult> ReadOnceAsync(bool async, Action<MemcachedClientOptions> change, string? address = null)
    {
        using MemcachedStore store = Store(address ?? _server.Address, o =>
        {
            fixture.Configure(o);
            change(o);
        });
        var batch = new StoreBatch();
        batch.AddRead(_prefix + "k");
        await RunAsync(store, batch, async);
        return batch[0];
    }
}

/// <summary>TLS deadlines and cancellation against a scripted server that accepts and never answers.</summary>
public sealed class TlsDeadlineTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_server_that_never_answers_the_tls_handshake_times_out_at_connect(bool async)
    {
        using var server = new ScriptedServer((client, _) => client.ReadPipelineAsync());
        using MemcachedStore store = Store(server.Address, o =>
        {
            o.Tls = new MemcachedTlsOptions();
            o.ConnectTimeout = TimeSpan.FromMilliseconds(300);
        });
        var batch = new StoreBatch();
        batch.AddRead("k");
        await RunAsync(store, batch, async);
        Assert.Equal(StoreStatus.Unavailable, batch[0].Status);
        MemcachedTimeoutException error = Assert.IsType<MemcachedTimeoutException>(batch[0].Error);
        Assert.Contains("the TLS handshake", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelling_a_tls_handshake_throws_and_the_store_stays_usable()
    {
        using var server = new ScriptedServer((client, _) => client.ReadPipelineAsync());
        using MemcachedStore store = Store(server.Address, o =>
        {
            o.Tls = new MemcachedTlsOptions();
            o.ConnectTimeout = TimeSpan.FromSeconds(30);
        });
        var batch = new StoreBatch();
        batch.AddRead("k");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await store.ExecuteAsync(batch, cancel.Token));
        Assert.False(store.IsCircuitOpen(store.Servers[0]));
    }
}
