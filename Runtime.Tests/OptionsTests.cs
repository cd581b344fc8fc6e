using SharedEntities.Stores;

namespace SharedEntities.Tests;

public sealed class OptionsTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        var options = new CoherenceOptions();
        options.Validate();
        Assert.Equal(OutsideScopeReads.CheckEveryRead, options.OutsideScopeReads);
        Assert.False(options.AllowCommitWhenStoreUnavailable);
    }

    [Theory]
    [InlineData(nameof(CoherenceOptions.TokenTtl))]
    [InlineData(nameof(CoherenceOptions.DirtyTokenTtl))]
    [InlineData(nameof(CoherenceOptions.TombstoneTtl))]
    [InlineData(nameof(CoherenceOptions.LeaseTtl))]
    [InlineData(nameof(CoherenceOptions.DatabaseWaitTimeout))]
    public void A_non_positive_ttl_is_refused_by_name(string property)
    {
        var options = new CoherenceOptions();
        typeof(CoherenceOptions).GetProperty(property)!.SetValue(options, TimeSpan.Zero);
        var refused = Assert.Throws<ArgumentException>(() => new Coherence(new InMemorySharedStore(), options));
        Assert.Contains(property, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Per_entity_ttls_override_the_default_and_are_validated()
    {
        var options = new CoherenceOptions { TokenTtl = TimeSpan.FromMinutes(10) };
        options.TokenTtlByEntity["Sheet"] = TimeSpan.FromSeconds(30);
        Assert.Equal(TimeSpan.FromSeconds(30), options.TokenTtlFor("Sheet"));
        Assert.Equal(TimeSpan.FromMinutes(10), options.TokenTtlFor("Other"));
        options.TokenTtlByEntity["Bad"] = TimeSpan.FromSeconds(-1);
        Assert.Contains("TokenTtlByEntity[Bad]", Assert.Throws<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_database_wait_timeout_defaults_to_five_seconds_and_must_fit_in_milliseconds_of_an_int()
    {
        Assert.Equal(TimeSpan.FromSeconds(5), new CoherenceOptions().DatabaseWaitTimeout);
        var tooLong = new CoherenceOptions { DatabaseWaitTimeout = TimeSpan.FromDays(30) };
        Assert.Contains(nameof(CoherenceOptions.DatabaseWaitTimeout), Assert.Throws<ArgumentException>(tooLong.Validate).Message, StringComparison.Ordinal);
        new CoherenceOptions { DatabaseWaitTimeout = TimeSpan.FromMilliseconds(1) }.Validate();
    }

    [Fact]
    public void An_undefined_outside_scope_behaviour_and_a_bad_prefix_are_refused()
    {
        Assert.Throws<ArgumentException>(new CoherenceOptions { OutsideScopeReads = (OutsideScopeReads)42 }.Validate);
        Assert.Throws<ArgumentException>(new CoherenceOptions { KeyPrefix = "my app" }.Validate);
    }

    [Fact]
    public void The_key_prefix_starts_every_key()
    {
        var world = new World();
        world.InsertSheet(1, "Q1");
        var process = world.NewProcess(new CoherenceOptions { KeyPrefix = "tenant7:" });
        Assert.Equal("tenant7:Sheet:1", process.Coherence.StoreKeyOf(process.Sheet(1)));
    }

    [Fact]
    public void A_runtime_keeps_a_frozen_copy_of_every_setting()
    {
        var given = new CoherenceOptions
        {
            OutsideScopeReads = OutsideScopeReads.Throw,
            TokenTtl = TimeSpan.FromMinutes(7),
            DirtyTokenTtl = TimeSpan.FromSeconds(9),
            TombstoneTtl = TimeSpan.FromHours(3),
            LeaseTtl = TimeSpan.FromSeconds(4),
            AllowCommitWhenStoreUnavailable = true,
            PublishInBackground = true,
            DatabaseWaitTimeout = TimeSpan.FromSeconds(2),
            KeyPrefix = "app:",
            HashKeys = true,
            KeyHashSecret = "s",
            LogKeys = true,
        };
        given.TokenTtlByEntity["Sheet"] = TimeSpan.FromMinutes(1);
        given.EntityCache.Enabled = false;
        given.EntityCache.SizeLimit = 77;
        given.EntityCache.IncludedEntities.Add("Sheet");
        given.EntityCache.ExcludedEntities.Add("Note");
        using var coherence = new Coherence(new Stores.InMemorySharedStore(), given);

        // Every public setting is copied (a setting added later and forgotten in the copy fails here).
        foreach (System.Reflection.PropertyInfo property in typeof(CoherenceOptions).GetProperties())
        {
            object? expected = property.GetValue(given);
            object? actual = property.GetValue(coherence.Options);
            if (expected is IDictionary<string, TimeSpan> map)
            {
                Assert.Equal(map, (IDictionary<string, TimeSpan>)actual!);
            }
            else if (expected is Caching.EntityCacheOptions cache)
            {
                var copy = (Caching.EntityCacheOptions)actual!;
                Assert.NotSame(cache, copy);
                foreach (System.Reflection.PropertyInfo setting in typeof(Caching.EntityCacheOptions).GetProperties())
                {
                    if (setting.GetValue(cache) is ISet<string> names)
                    {
                        Assert.Equal(names.Order(), ((ISet<string>)setting.GetValue(copy)!).Order());
                        Assert.NotEmpty(names);
                    }
                    else
                    {
                        Assert.Equal(setting.GetValue(cache), setting.GetValue(copy));
                        Assert.NotEqual(setting.GetValue(new Caching.EntityCacheOptions()), setting.GetValue(copy));
                    }
                }
            }
            else
            {
                Assert.Equal(expected, actual);
                Assert.NotEqual(property.GetValue(new CoherenceOptions()), actual); // the test sets every setting to a non-default
            }
        }

        // The copy cannot change; the caller's instance still can, without effect on the runtime.
        var refused = Assert.Throws<InvalidOperationException>(() => coherence.Options.TokenTtl = TimeSpan.FromDays(1));
        Assert.Contains("cannot change", refused.Message, StringComparison.Ordinal);
        Assert.Throws<NotSupportedException>(() => coherence.Options.TokenTtlByEntity["Cell"] = TimeSpan.FromSeconds(1));
        given.KeyPrefix = "other:";
        given.TokenTtlByEntity["Sheet"] = TimeSpan.FromDays(2);
        Assert.Equal("app:", coherence.Options.KeyPrefix);
        Assert.Equal(TimeSpan.FromMinutes(1), coherence.Options.TokenTtlFor("Sheet"));
    }
}
