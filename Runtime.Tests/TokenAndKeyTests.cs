using SharedEntities.Protocol;

namespace SharedEntities.Tests;

public sealed class TokenAndKeyTests
{
    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(41L)]
    [InlineData(SharedToken.MaxVersion)]
    public void Tokens_encode_version_and_state_and_order_dirty_before_clean_before_the_next_version(long version)
    {
        SharedToken dirty = SharedToken.Dirty(version);
        SharedToken clean = SharedToken.Clean(version);
        Assert.True(dirty.IsDirty);
        Assert.False(dirty.IsClean);
        Assert.True(clean.IsClean);
        Assert.Equal(version, dirty.Version);
        Assert.Equal(version, clean.Version);
        Assert.True(dirty.Value < clean.Value);
        Assert.True(clean.Value < SharedToken.Tombstone.Value);
        if (version < SharedToken.MaxVersion)
        {
            Assert.True(clean.Value < SharedToken.Dirty(version + 1).Value);
        }
    }

    [Fact]
    public void The_tombstone_is_neither_clean_nor_dirty()
    {
        Assert.True(SharedToken.Tombstone.IsTombstone);
        Assert.False(SharedToken.Tombstone.IsClean);
        Assert.False(SharedToken.Tombstone.IsDirty);
        Assert.Equal("tombstone", SharedToken.Tombstone.ToString());
        Assert.Equal("clean(3)", SharedToken.Clean(3).ToString());
        Assert.False(new SharedToken(-4).IsClean);
        Assert.False(new SharedToken(-4).IsDirty);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(SharedToken.MaxVersion + 1)]
    public void Out_of_range_versions_are_refused(long version)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedToken.Clean(version));
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedToken.Dirty(version));
    }

    [Fact]
    public void Plain_keys_are_kept_readable()
    {
        Assert.Equal("Sheet:42", StoreKeys.For("", "Sheet", 42));
        Assert.Equal("app1:Sheet:42", StoreKeys.For("app1:", "Sheet", 42));
        Assert.Equal("Sheet:-7", StoreKeys.For("", "Sheet", -7L));
        Assert.Equal("Sheet:", StoreKeys.For("", "Sheet", ""));
        Assert.Equal("Doc:6f9619ff-8b86-d011-b42d-00cf4fc964ff", StoreKeys.For("", "Doc", Guid.Parse("6F9619FF-8B86-D011-B42D-00CF4FC964FF")));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("tab\there")]
    [InlineData("new\nline")]
    [InlineData("naïve")]
    [InlineData("日本語")]
    [InlineData("tilde~")]
    public void Odd_keys_are_hashed_into_valid_memcached_keys(string key)
    {
        string encoded = StoreKeys.For("", "Sheet", key);
        AssertValidMemcachedKey(encoded);
        Assert.StartsWith("~", encoded, StringComparison.Ordinal);
        Assert.Equal(encoded, StoreKeys.For("", "Sheet", key)); // stable
    }

    [Fact]
    public void Long_keys_are_hashed_and_distinct_keys_stay_distinct()
    {
        string longKey = new('a', 300);
        string other = new string('a', 299) + "b";
        string encoded = StoreKeys.For(new string('p', StoreKeys.MaxPrefixLength), "Sheet", longKey);
        AssertValidMemcachedKey(encoded);
        Assert.NotEqual(encoded, StoreKeys.For(new string('p', StoreKeys.MaxPrefixLength), "Sheet", other));

        // A plain key can never look like a hashed one: '~' is not a plain character.
        Assert.NotEqual(StoreKeys.For("", "Sheet", "x y"), StoreKeys.For("", "Sheet", "~" + StoreKeys.For("", "Sheet", "x y")));
    }

    [Fact]
    public void Keys_format_with_the_invariant_culture()
    {
        var previous = Thread.CurrentThread.CurrentCulture;
        try
        {
            Thread.CurrentThread.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            Assert.Equal("Price:1.5", StoreKeys.For("", "Price", 1.5m));
        }
        finally
        {
            Thread.CurrentThread.CurrentCulture = previous;
        }
    }

    [Theory]
    [InlineData("with space")]
    [InlineData("tilde~")]
    [InlineData("ctrl\u0001")]
    public void Bad_prefixes_are_refused_with_the_reason(string prefix)
    {
        var refused = Assert.Throws<ArgumentException>(() => StoreKeys.ValidatePrefix(prefix));
        Assert.Contains("letters, digits", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_too_long_prefix_is_refused()
    {
        var refused = Assert.Throws<ArgumentException>(() => StoreKeys.ValidatePrefix(new string('p', StoreKeys.MaxPrefixLength + 1)));
        Assert.Contains("at most 64", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ctrl\u0001", "U+0001")]
    [InlineData("line\r\nbreak", "U+000D")]
    [InlineData("nul\0", "U+0000")]
    public void A_refused_prefix_is_shown_with_its_control_characters_escaped(string prefix, string named)
    {
        var refused = Assert.Throws<ArgumentException>(() => StoreKeys.ValidatePrefix(prefix));
        Assert.Contains(named, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(refused.Message, c => char.IsControl(c));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(StoreKeys.MaxPrefixLength, 0)]
    [InlineData(StoreKeys.MaxPrefixLength, 150)]
    [InlineData(StoreKeys.MaxPrefixLength, 185)]
    [InlineData(StoreKeys.MaxPrefixLength, 186)]
    [InlineData(StoreKeys.MaxPrefixLength, 200)]
    [InlineData(StoreKeys.MaxPrefixLength, 5000)]
    [InlineData(10, 240)]
    public void Every_key_fits_memcached_whatever_the_prefix_entity_name_and_key(int prefixLength, int keyLength)
    {
        string prefix = new('p', prefixLength);
        string entity = "Namespace.With.A.Long.Name.Cell`1<System.Collections.Generic.Dictionary`2<System.String,System.Int64>>";
        string key = new('k', keyLength);
        foreach (bool hashAll in new[] { false, true })
        {
            string encoded = StoreKeys.For(prefix, entity, key, hashAll, secret: default);
            AssertValidMemcachedKey(encoded);
            Assert.StartsWith(prefix, encoded, StringComparison.Ordinal);
        }

        // A key that fits with its prefix stays readable; one that does not is hashed.
        string plain = StoreKeys.For(prefix, "Sheet", key);
        Assert.Equal(prefix.Length + "Sheet:".Length + keyLength <= StoreKeys.MaxKeyLength, plain == prefix + "Sheet:" + key);
    }

    [Fact]
    public void Hashed_keys_show_no_key_value_and_a_secret_changes_every_hash()
    {
        string hashed = StoreKeys.For("app:", "Doc", "john.doe:admin", hashAll: true, secret: default);
        Assert.DoesNotContain("john", hashed, StringComparison.Ordinal);
        Assert.DoesNotContain("Doc", hashed, StringComparison.Ordinal);
        Assert.StartsWith("app:~", hashed, StringComparison.Ordinal);
        Assert.Equal(hashed, StoreKeys.For("app:", "Doc", "john.doe:admin", hashAll: true, secret: default));
        Assert.NotEqual(hashed, StoreKeys.For("app:", "Doc", "jane.doe:admin", hashAll: true, secret: default));

        string withSecret = StoreKeys.For("app:", "Doc", "john.doe:admin", hashAll: true, "s3cret"u8);
        Assert.NotEqual(hashed, withSecret);
        Assert.NotEqual(withSecret, StoreKeys.For("app:", "Doc", "john.doe:admin", hashAll: true, "other"u8));
        AssertValidMemcachedKey(withSecret);

        // The option reaches every key the runtime makes.
        using var coherence = new Coherence(new Stores.InMemorySharedStore(), new CoherenceOptions { KeyPrefix = "app:", HashKeys = true, KeyHashSecret = "s3cret" });
        var doc = new Sheet { Id = 42 };
        Assert.Equal(StoreKeys.For("app:", "Sheet", 42, hashAll: true, "s3cret"u8), coherence.StoreKeyOf(doc));
    }

    [Fact]
    public void An_empty_key_hash_secret_is_refused()
    {
        var refused = Assert.Throws<ArgumentException>(() => new CoherenceOptions { KeyHashSecret = "" }.Validate());
        Assert.Equal("KeyHashSecret", refused.ParamName);
    }

    private static void AssertValidMemcachedKey(string key)
    {
        Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(key), 1, StoreKeys.MaxKeyLength);
        Assert.All(key, c => Assert.InRange(c, '!', '~'));
    }
}
