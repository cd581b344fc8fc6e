using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Tests;

/// <summary>
/// Values the library cannot have written, found by a writer under the row lock (written by another client between
/// the scope's check and its commit): replaced as a miss would be, so that the commit goes through and leaves the
/// store clean. The readers' side is tested on real servers (Database.Tests, GuaranteeTests).
/// </summary>
public sealed class HostileTokenTests
{
    public static TheoryData<long> Damage => new()
    {
        long.MaxValue,                       // the serial-only tombstone under a versioned key
        (4 * 2) + 3,                         // a state the library never writes
        SharedToken.Clean(10_000_000_000_000).Value,   // far ahead (beyond TokenDamage.MaxAhead)
        SharedToken.Deleted(10_000_000_000_000).Value,
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public async Task A_commit_that_finds_damage_where_its_dirty_token_goes_replaces_it_and_publishes(long value)
    {
        (World world, Process a, _, _) = World.TwoProcessesSharingSheet1();
        using var logs = new FakeLoggerProvider();
        using var loggers = new LoggerFactory([logs]);
        var writer = new Process(world, options: null, metrics: null, loggers);
        using var damaged = new MetricCollector<long>(writer.Coherence.Metrics.DamagedTokens);
        Sheet sheet = writer.Sheet(1);
        string key = writer.Coherence.StoreKeyOf(sheet);

        await writer.CommitAsync(scope =>
        {
            _ = sheet.Title;
            ((IStoredItems)world.Store).Put(key, value, TimeSpan.Zero, isPlaceholder: false);
            sheet.Title = "Q2";
        });

        Assert.Equal("Q2", world.TitleInDatabase(1));
        Assert.Equal(SharedToken.Clean(2).Value, world.Store.Peek(key));
        Assert.Equal(1, damaged.GetMeasurementSnapshot().EvaluateAsCounter());
        FakeLogRecord warning = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains(new SharedToken(value).ToString(), warning.Message, StringComparison.Ordinal);

        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("Q2", a.Sheet(1).Title);
        }
    }

    [Fact]
    public async Task Warnings_name_keys_by_reference_unless_keys_may_be_logged()
    {
        foreach (bool logKeys in new[] { false, true })
        {
            var world = new World();
            world.InsertSheet(1, "Q1");
            using var logs = new FakeLoggerProvider();
            using var loggers = new LoggerFactory([logs]);
            var reader = new Process(world, new CoherenceOptions { KeyPrefix = "app:", LogKeys = logKeys }, metrics: null, loggers);
            Sheet sheet = reader.Sheet(1);
            string key = reader.Coherence.StoreKeyOf(sheet);
            ((IStoredItems)world.Store).Put(key, -5, TimeSpan.Zero, isPlaceholder: false);

            await reader.ReadInScopeAsync(sheet);

            FakeLogRecord warning = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level >= LogLevel.Information);
            Assert.Equal(logKeys, warning.Message.Contains(key, StringComparison.Ordinal));
            Assert.Equal(!logKeys, warning.Message.Contains(StoreKeys.Reference(key), StringComparison.Ordinal));
            Assert.Equal(SharedToken.Clean(1).Value, world.Store.Peek(key));
        }
    }
}
