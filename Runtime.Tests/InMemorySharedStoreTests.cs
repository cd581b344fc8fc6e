using SharedEntities.Stores;

namespace SharedEntities.Tests;

/// <summary>The reference semantics of every store operation (the memcached store matches them).</summary>
public sealed class InMemorySharedStoreTests
{
    private readonly FakeTimeProvider _clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
    private readonly InMemorySharedStore _store;

    public InMemorySharedStoreTests() => _store = new InMemorySharedStore(_clock);

    [Fact]
    public void Raise_only_ever_raises()
    {
        Assert.Equal(StoreStatus.Stored, Run(Raise("k", 10)).Status);
        StoreResult lower = Run(Raise("k", 5));
        Assert.Equal(StoreStatus.NotStored, lower.Status);
        Assert.Equal(10, lower.Value);
        Assert.Equal(StoreStatus.Stored, Run(Raise("k", 11)).Status);
        Assert.Equal(11, _store.Peek("k"));
    }

    [Fact]
    public void Publish_replaces_only_the_expected_value_and_never_adds()
    {
        Assert.Equal(StoreStatus.NotStored, Run(Publish("k", expected: 4, value: 5)).Status);
        Assert.Null(_store.Peek("k"));
        Run(Raise("k", 4));
        Assert.Equal(StoreStatus.NotStored, Run(Publish("k", expected: 2, value: 3)).Status);
        Assert.Equal(StoreStatus.Stored, Run(Publish("k", expected: 4, value: 5)).Status);
        Assert.Equal(5, _store.Peek("k"));
    }

    [Fact]
    public void A_lease_has_one_winner_whose_fill_lands_only_on_its_own_placeholder()
    {
        StoreResult first = Run(Read("k", lease: true));
        StoreResult second = Run(Read("k", lease: true));
        Assert.Equal(StoreStatus.LeaseWon, first.Status);
        Assert.Equal(StoreStatus.LeaseLost, second.Status);
        Assert.Equal(StoreStatus.Miss, Run(Read("k", lease: false)).Status);
        Assert.Equal(StoreStatus.NotStored, Run(Fill("k", 7, cas: first.Cas + 1000)).Status);
        Assert.Equal(StoreStatus.Stored, Run(Fill("k", 7, first.Cas)).Status);
        Assert.Equal(StoreStatus.Hit, Run(Read("k", lease: true)).Status);
        Assert.Equal(StoreStatus.NotStored, Run(Fill("k", 9, first.Cas)).Status);
    }

    [Fact]
    public void A_raise_replaces_a_placeholder_and_the_late_fill_then_fails()
    {
        StoreResult lease = Run(Read("k", lease: true));
        Assert.Equal(StoreStatus.Stored, Run(Raise("k", 4)).Status);
        Assert.Equal(StoreStatus.NotStored, Run(Fill("k", 3, lease.Cas)).Status);
        Assert.Equal(4, _store.Peek("k"));
    }

    [Fact]
    public void Increment_and_add_if_absent()
    {
        Assert.Equal(StoreStatus.Miss, Run(new StoreOperation(StoreOperationKind.Increment, "k")).Status);
        Assert.Equal(StoreStatus.Stored, Run(new StoreOperation(StoreOperationKind.AddIfAbsent, "k", 100)).Status);
        Assert.Equal(StoreStatus.NotStored, Run(new StoreOperation(StoreOperationKind.AddIfAbsent, "k", 5)).Status);
        StoreResult bumped = Run(new StoreOperation(StoreOperationKind.Increment, "k"));
        Assert.Equal(StoreStatus.Stored, bumped.Status);
        Assert.Equal(101, bumped.Value);
    }

    [Fact]
    public void A_tombstone_is_never_incremented()
    {
        Run(Raise("k", SharedEntities.Protocol.SharedToken.Tombstone.Value));
        StoreResult refused = Run(new StoreOperation(StoreOperationKind.Increment, "k"));
        Assert.Equal(StoreStatus.NotStored, refused.Status);
        Assert.Equal(long.MaxValue, refused.Value);
        Assert.Equal(long.MaxValue, _store.Peek("k"));
    }

    [Fact]
    public void A_lease_without_a_positive_ttl_is_refused()
    {
        var batch = new StoreBatch();
        var refused = Assert.Throws<ArgumentException>(() => batch.Add(new StoreOperation(StoreOperationKind.Read, "k", Lease: true)));
        Assert.Contains("positive TTL", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Items_expire_after_their_ttl()
    {
        Run(Raise("k", 3, TimeSpan.FromSeconds(30)));
        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(3, _store.Peek("k"));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(_store.Peek("k"));
        Assert.Equal(0, _store.Count);
    }

    [Fact]
    public void An_unavailable_store_answers_every_operation_unavailable()
    {
        _store.IsAvailable = false;
        var batch = new StoreBatch();
        batch.AddRead("a");
        batch.Add(Raise("b", 1));
        _store.Execute(batch);
        Assert.All(Enumerable.Range(0, batch.Count), i => Assert.Equal(StoreStatus.Unavailable, batch[i].Status));
        Assert.IsType<SharedStoreUnavailableException>(batch[0].Error);
    }

    [Fact]
    public async Task Cancellation_is_observed()
    {
        var batch = new StoreBatch();
        batch.AddRead("a");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _store.ExecuteAsync(batch, new CancellationToken(canceled: true)).AsTask());
    }

    [Fact]
    public void A_batch_rejects_an_empty_key()
    {
        var batch = new StoreBatch();
        Assert.Throws<ArgumentException>(() => batch.AddRead(""));
    }

    private static StoreOperation Read(string key, bool lease) =>
        new(StoreOperationKind.Read, key, Ttl: lease ? TimeSpan.FromSeconds(10) : default, Lease: lease);

    private static StoreOperation Raise(string key, long value, TimeSpan ttl = default) => new(StoreOperationKind.Raise, key, value, Ttl: ttl);

    private static StoreOperation Publish(string key, long expected, long value) => new(StoreOperationKind.Publish, key, value, Expected: expected);

    private static StoreOperation Fill(string key, long value, ulong cas) => new(StoreOperationKind.Fill, key, value, Cas: cas);

    private StoreResult Run(StoreOperation operation)
    {
        var batch = new StoreBatch();
        batch.Add(operation);
        _store.Execute(batch);
        return batch[0];
    }
}
