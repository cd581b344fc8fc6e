namespace SharedEntities.Stores;

/// <summary>The operations a shared store performs. Each is atomic per key; see <see cref="ISharedStore"/>.</summary>
public enum StoreOperationKind : byte
{
    /// <summary>
    /// Read the value. With a lease TTL, a miss creates a placeholder: the first reader gets
    /// <see cref="StoreStatus.LeaseWon"/> (and the placeholder's CAS for <see cref="Fill"/>), later readers
    /// <see cref="StoreStatus.LeaseLost"/> until it is filled or expires.
    /// </summary>
    Read,

    /// <summary>Set the value to <c>max(current, value)</c>; a missing item, a placeholder or a damaged value counts as below everything.</summary>
    Raise,

    /// <summary>Set the value only if the current value equals <see cref="StoreOperation.Expected"/>; a miss stores nothing.</summary>
    Publish,

    /// <summary>
    /// Set the value only if the item is still the one identified by <see cref="StoreOperation.Cas"/>: the lease
    /// placeholder a read created, or a value a read reported as <see cref="StoreStatus.Damaged"/> (or that the caller
    /// found unusable), which is replaced exactly as it was seen.
    /// </summary>
    Fill,

    /// <summary>Add one to an existing value atomically; a miss stores nothing; a tombstone is not incremented (<see cref="StoreStatus.NotStored"/>).</summary>
    Increment,

    /// <summary>Store the value only if no item (value or placeholder) exists.</summary>
    AddIfAbsent,
}

/// <summary>One request in a <see cref="StoreBatch"/>.</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Key">An encoded key (see <see cref="Protocol.StoreKeys"/>).</param>
/// <param name="Value">The value to store (raise, publish, fill, add).</param>
/// <param name="Expected">The value a <see cref="StoreOperationKind.Publish"/> replaces.</param>
/// <param name="Cas">The lease placeholder's CAS for <see cref="StoreOperationKind.Fill"/>.</param>
/// <param name="Ttl">The lifetime of a stored value, or of the placeholder a <see cref="StoreOperationKind.Read"/> with a lease creates; zero for none.</param>
/// <param name="Lease">Whether a read that misses takes a lease.</param>
public readonly record struct StoreOperation(
    StoreOperationKind Kind,
    string Key,
    long Value = 0,
    long Expected = 0,
    ulong Cas = 0,
    TimeSpan Ttl = default,
    bool Lease = false);

/// <summary>What became of a <see cref="StoreOperation"/>.</summary>
public enum StoreStatus : byte
{
    /// <summary>Not executed yet.</summary>
    Pending,

    /// <summary>A read found a value (<see cref="StoreResult.Value"/>).</summary>
    Hit,

    /// <summary>No item (and no lease was asked for, or the operation does not create one).</summary>
    Miss,

    /// <summary>A read missed and this caller holds the lease: fill it with <see cref="StoreResult.Cas"/>.</summary>
    LeaseWon,

    /// <summary>A read missed and another caller holds the lease.</summary>
    LeaseLost,

    /// <summary>
    /// A read found a value that is not a token (not a number, too large): something other than this library wrote
    /// it. <see cref="StoreResult.Cas"/> identifies it, so that a <see cref="StoreOperationKind.Fill"/> can replace it.
    /// </summary>
    Damaged,

    /// <summary>The write was applied; <see cref="StoreResult.Value"/> is the value now stored (its <see cref="StoreResult.Cas"/> may be 0: a store need not fetch it).</summary>
    Stored,

    /// <summary>The write's condition did not hold; <see cref="StoreResult.Value"/> is the current value when known.</summary>
    NotStored,

    /// <summary>The server for this key could not be reached (down, circuit open, timed out).</summary>
    Unavailable,

    /// <summary>The server answered with an error or something unreadable; <see cref="StoreResult.Error"/> says what.</summary>
    Failed,
}

/// <summary>The outcome of one <see cref="StoreOperation"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Value">The value read, stored, or found.</param>
/// <param name="Cas">The item's CAS (lease placeholders: the value a fill must present).</param>
/// <param name="Error">Why the operation failed or the server was unavailable.</param>
public readonly record struct StoreResult(StoreStatus Status, long Value = 0, ulong Cas = 0, Exception? Error = null)
{
    /// <summary>The store could not say anything about the key.</summary>
    public bool IsFailure => Status is StoreStatus.Unavailable or StoreStatus.Failed or StoreStatus.Pending;
}
