using SharedEntities.Protocol;

namespace SharedEntities.Stores;

/// <summary>An item as the store semantics see it: its value, its CAS, and whether it is a lease placeholder.</summary>
/// <param name="Value">The stored token (a placeholder's is 0).</param>
/// <param name="Cas">The compare-and-swap value, new at every write of the item.</param>
/// <param name="IsPlaceholder">Whether the item is a lease's placeholder, which reads as a miss.</param>
public readonly record struct StoredItem(long Value, ulong Cas, bool IsPlaceholder);

/// <summary>
/// The storage of a store that applies operations itself (in memory, in a SQLite table): what
/// <see cref="StoreSemantics.Apply"/> needs. Part of the extension surface for stores in packages of their own.
/// </summary>
public interface IStoredItems
{
    /// <summary>Reads a live item; an expired one counts as absent.</summary>
    bool TryGet(string key, out StoredItem item);

    /// <summary>Stores a value (or a placeholder) with a new CAS and the TTL (zero: no expiry).</summary>
    StoredItem Put(string key, long value, TimeSpan ttl, bool isPlaceholder);

    /// <summary>Adds one to the item's value with a new CAS, keeping its expiry (as memcached's arithmetic does).</summary>
    StoredItem Increment(string key, StoredItem current);
}

/// <summary>
/// What each <see cref="StoreOperationKind"/> does, in one place. <see cref="InMemorySharedStore"/> and
/// <c>SqliteSharedStore</c> apply it to their own storage under their own atomicity (a lock, a transaction);
/// <c>MemcachedStore</c> reproduces it with meta commands, and its tests compare it with the in-memory store.
/// A store of your own over a storage with transactions can apply it the same way.
/// </summary>
public static class StoreSemantics
{
    /// <summary>Applies <paramref name="op"/> to <paramref name="items"/>; the caller makes the whole batch atomic.</summary>
    public static StoreResult Apply(IStoredItems items, in StoreOperation op)
    {
        bool exists = items.TryGet(op.Key, out StoredItem item);
        bool hasValue = exists && !item.IsPlaceholder;
        switch (op.Kind)
        {
            case StoreOperationKind.Read:
                if (hasValue)
                {
                    return new StoreResult(StoreStatus.Hit, item.Value, item.Cas);
                }

                if (!op.Lease)
                {
                    return new StoreResult(StoreStatus.Miss);
                }

                return exists
                    ? new StoreResult(StoreStatus.LeaseLost, Cas: item.Cas)
                    : new StoreResult(StoreStatus.LeaseWon, Cas: items.Put(op.Key, 0, op.Ttl, isPlaceholder: true).Cas);

            case StoreOperationKind.Raise:
                return hasValue && item.Value >= op.Value
                    ? new StoreResult(StoreStatus.NotStored, item.Value, item.Cas)
                    : Stored(items.Put(op.Key, op.Value, op.Ttl, isPlaceholder: false));

            case StoreOperationKind.Publish:
                if (hasValue && item.Value == op.Expected)
                {
                    return Stored(items.Put(op.Key, op.Value, op.Ttl, isPlaceholder: false));
                }

                return hasValue ? new StoreResult(StoreStatus.NotStored, item.Value, item.Cas) : new StoreResult(StoreStatus.NotStored);

            case StoreOperationKind.Fill:
                return exists && item.Cas == op.Cas
                    ? Stored(items.Put(op.Key, op.Value, op.Ttl, isPlaceholder: false))
                    : new StoreResult(StoreStatus.NotStored, hasValue ? item.Value : 0);

            case StoreOperationKind.Increment:
                if (!hasValue)
                {
                    return new StoreResult(StoreStatus.Miss);
                }

                return new SharedToken(item.Value).IsTombstone
                    ? new StoreResult(StoreStatus.NotStored, item.Value, item.Cas)
                    : Stored(items.Increment(op.Key, item));

            case StoreOperationKind.AddIfAbsent:
                return exists
                    ? new StoreResult(StoreStatus.NotStored, hasValue ? item.Value : 0, item.Cas)
                    : Stored(items.Put(op.Key, op.Value, op.Ttl, isPlaceholder: false));

            default:
                throw new ArgumentOutOfRangeException(nameof(op), op.Kind, "Unknown store operation.");
        }
    }

    private static StoreResult Stored(StoredItem item) => new(StoreStatus.Stored, item.Value, item.Cas);
}
