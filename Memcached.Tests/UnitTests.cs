namespace SharedEntities.Memcached.Tests;

public sealed class KetamaRingTests
{
    private static MemcachedEndpoint[] Servers(int count, int weight = 1) =>
        [.. Enumerable.Range(0, count).Select(i => new MemcachedEndpoint($"10.0.0.{i + 1}", 11211, weight))];

    private static readonly string[] Keys = [.. Enumerable.Range(0, 20_000).Select(i => $"app:Sheet:{i}")];

    [Fact]
    public void Placement_is_deterministic_and_depends_only_on_the_server_list()
    {
        var first = new KetamaRing(Servers(3));
        var second = new KetamaRing(Servers(3));
        Assert.Equal(Keys.Select(first.GetServer), Keys.Select(second.GetServer));
        Assert.Equal(3 * 160, first.PointCount);

        // Pinned (and checked against an independent Python port of libketama's placement): another process, or
        // another release, must place keys identically.
        Assert.Equal([2, 2, 2, 2, 1, 1, 1, 1], Keys.Take(8).Select(first.GetServer));
    }

    [Fact]
    public void Keys_spread_evenly_over_equal_servers()
    {
        var ring = new KetamaRing(Servers(4));
        int[] counts = new int[4];
        foreach (string key in Keys)
        {
            counts[ring.GetServer(key)]++;
        }

        Assert.All(counts, c => Assert.InRange(c, Keys.Length / 4 * 0.8, Keys.Length / 4 * 1.2));
    }

    [Fact]
    public void Weights_give_proportional_shares()
    {
        MemcachedEndpoint[] servers = [new("10.0.0.1", 11211, 1), new("10.0.0.2", 11211, 3)];
        var ring = new KetamaRing(servers);
        double heavy = Keys.Count(k => ring.GetServer(k) == 1) / (double)Keys.Length;
        Assert.InRange(heavy, 0.68, 0.82);
    }

    [Fact]
    public void Adding_a_server_moves_only_about_its_share_and_only_onto_it()
    {
        var three = new KetamaRing(Servers(3));
        var four = new KetamaRing(Servers(4));
        int moved = 0;
        foreach (string key in Keys)
        {
            int before = three.GetServer(key);
            int after = four.GetServer(key);
            if (before != after)
            {
                moved++;
                Assert.Equal(3, after);
            }
        }

        Assert.InRange(moved / (double)Keys.Length, 0.15, 0.35);
    }

    [Fact]
    public void Removing_a_server_moves_only_its_keys()
    {
        MemcachedEndpoint[] servers = Servers(4);
        var all = new KetamaRing(servers);
        var without = new KetamaRing([servers[0], servers[1], servers[3]]);
        int[] map = [0, 1, -1, 2];
        foreach (string key in Keys)
        {
            int before = all.GetServer(key);
            if (before != 2)
            {
                Assert.Equal(map[before], without.GetServer(key));
            }
        }
    }

    [Fact]
    public void One_server_takes_every_key()
    {
        var ring = new KetamaRing(Servers(1));
        Assert.All(Keys.Take(100), k => Assert.Equal(0, ring.GetServer(k)));
    }
}

public sealed class MemcachedEndpointTests
{
    [Fact]
    public void Server_lists_parse_hosts_ports_weights_and_ipv6()
    {
        IReadOnlyList<MemcachedEndpoint> list = MemcachedEndpoint.ParseList(" 127.0.0.1:11211, cache.local ,10.0.0.2:11300 3,[::1]:11212 2");
        Assert.Equal(
            [new("127.0.0.1", 11211), new("cache.local", 11211), new("10.0.0.2", 11300, 3), new("::1", 11212, 2)],
            list);
        Assert.Equal("[::1]:11212", list[3].Address);
        Assert.Equal("10.0.0.2:11300 3", list[2].ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("a:1,,b:2", "Entry 2")]
    [InlineData("host:0", "port")]
    [InlineData("host:70000", "port")]
    [InlineData("host:abc", "port")]
    [InlineData("host:11211 0", "weight")]
    [InlineData("host:11211 heavy", "weight")]
    [InlineData("host:11211 2 3", "not 'host'")]
    [InlineData(":11211", "no host")]
    [InlineData("::1:11211", "IPv6")]
    [InlineData("[::1:11211", "IPv6")]
    [InlineData("a:1,a:1", "listed twice")]
    public void Bad_server_lists_are_refused_with_a_message_that_names_the_problem(string servers, string message)
    {
        ArgumentException error = Assert.ThrowsAny<ArgumentException>(() => MemcachedEndpoint.ParseList(servers));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_are_validated_setting_by_setting()
    {
        new MemcachedClientOptions().Validate();
        Assert.Contains("OperationTimeout", Assert.Throws<ArgumentException>(() => new MemcachedClientOptions { OperationTimeout = TimeSpan.Zero }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("MaxConnectionsPerServer", Assert.Throws<ArgumentException>(() => new MemcachedClientOptions { MaxConnectionsPerServer = 0 }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("MaxReconnectDelay", Assert.Throws<ArgumentException>(() => new MemcachedClientOptions { MaxReconnectDelay = TimeSpan.FromMilliseconds(1) }.Validate()).Message, StringComparison.Ordinal);
        Assert.Contains("port", Assert.Throws<ArgumentException>(() => new MemcachedStore("host:port")).Message, StringComparison.Ordinal);
    }
}

public sealed class CircuitBreakerTests
{
    [Fact]
    public void Opens_after_the_threshold_fails_fast_then_lets_one_probe_through()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var breaker = new CircuitBreaker(3, TimeSpan.FromSeconds(5), clock);
        Assert.True(breaker.TryEnter(out _, out _));
        Assert.Equal(BreakerTransition.None, breaker.OnFailure());
        Assert.Equal(BreakerTransition.None, breaker.OnSuccess()); // A success resets the count.
        Assert.Equal(BreakerTransition.None, breaker.OnFailure());
        Assert.Equal(BreakerTransition.None, breaker.OnFailure());
        Assert.Equal(BreakerTransition.Opened, breaker.OnFailure());

        Assert.False(breaker.TryEnter(out _, out TimeSpan retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(5), retryAfter);

        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.True(breaker.TryEnter(out bool probing, out _));
        Assert.True(probing);
        Assert.False(breaker.TryEnter(out _, out _)); // Only one probe.
        Assert.Equal(BreakerTransition.Reopened, breaker.OnFailure());
        Assert.False(breaker.TryEnter(out _, out _));

        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.True(breaker.TryEnter(out _, out _));
        breaker.OnAbandoned(); // A cancelled probe frees the slot.
        Assert.True(breaker.TryEnter(out _, out _));
        Assert.Equal(BreakerTransition.Closed, breaker.OnSuccess());
        Assert.False(breaker.IsOpen);
        Assert.True(breaker.TryEnter(out probing, out _));
        Assert.False(probing);
    }
}

public sealed class TokenTextTests
{
    [Theory]
    [InlineData(0L, "0")]
    [InlineData(12345L, "12345")]
    [InlineData(-1L, "18446744073709551615")]
    [InlineData(long.MinValue, "9223372036854775808")]
    [InlineData(long.MaxValue, "DEL")]
    public void Tokens_round_trip_through_their_wire_text(long value, string text)
    {
        byte[] buffer = new byte[32];
        int length = TokenText.Format(value, buffer);
        Assert.Equal(text, System.Text.Encoding.ASCII.GetString(buffer, 0, length));
        Assert.Equal(length, TokenText.Length(value));
        Assert.True(TokenText.Parse(buffer.AsSpan(0, length), out long parsed) is MetaValueKind.Number or MetaValueKind.Tombstone);
        Assert.Equal(value, parsed);
    }

    [Theory]
    [InlineData("", "Empty")]
    [InlineData("7   ", "Number")]
    [InlineData(" 7", "Other")]
    [InlineData("18446744073709551616", "Other")]
    [InlineData("-5", "Other")]
    [InlineData("12a", "Other")]
    [InlineData("DELETED", "Other")]
    public void Only_numbers_and_the_tombstone_are_tokens(string text, string kind) =>
        Assert.Equal(Enum.Parse<MetaValueKind>(kind), TokenText.Parse(System.Text.Encoding.ASCII.GetBytes(text), out _));

    [Fact]
    public void Ttls_round_up_to_seconds_and_turn_absolute_past_30_days()
    {
        Assert.Equal(0u, TokenText.Seconds(TimeSpan.Zero, TimeProvider.System));
        Assert.Equal(0u, TokenText.Seconds(TimeSpan.FromSeconds(-3), TimeProvider.System));
        Assert.Equal(1u, TokenText.Seconds(TimeSpan.FromMilliseconds(1), TimeProvider.System));
        Assert.Equal(2u, TokenText.Seconds(TimeSpan.FromSeconds(1.2), TimeProvider.System));
        Assert.Equal(2_592_000u, TokenText.Seconds(TimeSpan.FromDays(30), TimeProvider.System));
        long absolute = TokenText.Seconds(TimeSpan.FromDays(31), TimeProvider.System);
        Assert.InRange(absolute - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 2_678_390, 2_678_410);
    }
}

public sealed class CasHintsTests
{
    [Fact]
    public void A_hint_is_the_last_token_and_CAS_seen_and_a_reply_without_a_CAS_forgets_it()
    {
        var hints = new CasHints();
        hints.Saw("k", 10, 7);
        hints.Saw("k", 11, 9);
        Assert.True(hints.TryGet("k", out long token, out ulong cas));
        Assert.Equal((11L, 9UL), (token, cas));

        hints.Saw("k", 12, 0);
        Assert.False(hints.TryGet("k", out _, out _));
        hints.Saw("k", 12, 10);
        hints.Forget("k");
        Assert.False(hints.TryGet("k", out _, out _));
    }

    [Fact]
    public void The_hints_stay_bounded_by_forgetting_everything_when_full()
    {
        var hints = new CasHints();
        for (int i = 0; i < CasHints.Capacity; i++)
        {
            hints.Saw("k" + i, i, (ulong)i + 1);
        }

        hints.Saw("k0", 5, 99); // a known key: no room needed
        Assert.Equal(CasHints.Capacity, hints.Count);
        hints.Saw("one more", 1, 1);
        Assert.Equal(1, hints.Count);
        Assert.True(hints.TryGet("one more", out _, out _));
    }

    [Theory]
    [InlineData(false, "ms k 2 T60 C5 c O1\r\n12\r\n")]
    [InlineData(true, "ms k 2 T60 C5 q O1\r\n12\r\n")]
    public void A_loud_store_asks_for_the_new_CAS(bool quiet, string expected)
    {
        byte[] buffer = new byte[256];
        int length = MetaRequest.Set("k", 12, 60, cas: 5).Encode(buffer, opaque: 1, quiet);
        Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(buffer, 0, length));
    }
}

public sealed class ClientOptionsCopyTests
{
    [Fact]
    public void A_store_keeps_a_copy_of_every_setting()
    {
        using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(
            new System.Security.Cryptography.X509Certificates.CertificateRequest(
                "CN=copy", System.Security.Cryptography.ECDsa.Create(), System.Security.Cryptography.HashAlgorithmName.SHA256)
                .CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1)).Export(System.Security.Cryptography.X509Certificates.X509ContentType.Cert));
        var given = new MemcachedClientOptions
        {
            Servers = "127.0.0.1:1,127.0.0.1:2 3",
            ConnectTimeout = TimeSpan.FromSeconds(2),
            OperationTimeout = TimeSpan.FromSeconds(3),
            MaxConnectionsPerServer = 4,
            ReconnectDelay = TimeSpan.FromMilliseconds(60),
            MaxReconnectDelay = TimeSpan.FromSeconds(6),
            CircuitBreakerThreshold = 7,
            CircuitBreakerCooldown = TimeSpan.FromSeconds(8),
            MaxCasAttempts = 9,
            Username = "user",
            Password = "secret",
            Tls = new MemcachedTlsOptions
            {
                TargetHost = "cache.internal",
                TrustedCertificates = [certificate],
                RemoteCertificateValidationCallback = (_, _, _, errors) => errors == System.Net.Security.SslPolicyErrors.None,
                ClientCertificates = new System.Security.Cryptography.X509Certificates.X509CertificateCollection(new[] { certificate }),
                EnabledProtocols = System.Security.Authentication.SslProtocols.Tls13,
                CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.Online,
            },
        };

        MemcachedClientOptions copy = given.Copy();

        // Every public setting is copied (one added later and forgotten in Copy fails here), into collections of its own.
        AssertCopied(given, copy, new MemcachedClientOptions());
        AssertCopied(given.Tls, copy.Tls!, new MemcachedTlsOptions());
        Assert.NotSame(given.Tls, copy.Tls);
        Assert.NotSame(given.Tls.TrustedCertificates, copy.Tls!.TrustedCertificates);
        given.Tls.TrustedCertificates.Clear();
        Assert.Single(copy.Tls.TrustedCertificates!);
    }

    private static void AssertCopied<T>(T given, T copy, T defaults)
    {
        foreach (System.Reflection.PropertyInfo property in typeof(T).GetProperties().Where(p => p.CanWrite))
        {
            object? expected = property.GetValue(given);
            object? actual = property.GetValue(copy);
            Assert.NotEqual(property.GetValue(defaults), expected); // the test sets every setting
            if (expected is System.Collections.IEnumerable items and not string)
            {
                Assert.Equal(items.Cast<object>(), ((System.Collections.IEnumerable)actual!).Cast<object>());
            }
            else if (expected is not MemcachedTlsOptions)
            {
                Assert.Equal(expected, actual);
            }
        }
    }
}
