namespace SharedEntities.Protocol;

/// <summary>
/// The value a versioned entity has in the store: <c>4·version + state</c>, where state 0 means a write of that
/// version is in flight (<see cref="Dirty"/>), 1 that it is committed (<see cref="Clean"/>), and 2 that the row was
/// deleted by the write that took that version (<see cref="Deleted"/>). Tokens only ever rise, so a commit is always
/// preceded by its dirty token and a reader can never take an older clean token for the newest one. A row created
/// again after a delete starts at a version no earlier incarnation used (<see cref="NewIncarnationVersion"/>), so its
/// tokens rise above the deletion's.
/// </summary>
/// <remarks>
/// <see cref="Tombstone"/> (<see cref="long.MaxValue"/>) marks a deleted serial-only entity; for a versioned entity it
/// is not a token the library writes.
/// </remarks>
public readonly record struct SharedToken(long Value)
{
    /// <summary>The largest version a token can carry.</summary>
    public const long MaxVersion = (long.MaxValue / 4) - 1;

    private const int StateBits = 2;
    private const long DirtyState = 0;
    private const long CleanState = 1;
    private const long DeletedState = 2;

    // Versions of new rows: milliseconds since the Unix epoch, shifted left by this many bits and filled with random
    // ones, so that rows created again with the same key (by any process, even in the same millisecond) start above
    // every version an earlier incarnation could have reached.
    private const int IncarnationRandomBits = 12;

    /// <summary>The serial-only tombstone. Raising to it always wins.</summary>
    public static SharedToken Tombstone { get; } = new(long.MaxValue);

    /// <summary>A committed version.</summary>
    public static SharedToken Clean(long version) => new((Checked(version) << StateBits) | CleanState);

    /// <summary>A version whose write is in flight (raised before the commit, while the writer holds the row lock).</summary>
    public static SharedToken Dirty(long version) => new((Checked(version) << StateBits) | DirtyState);

    /// <summary>The row was deleted by the write that took <paramref name="version"/>.</summary>
    public static SharedToken Deleted(long version) => new((Checked(version) << StateBits) | DeletedState);

    /// <summary>The serial-only tombstone.</summary>
    public bool IsTombstone => Value == long.MaxValue;

    /// <summary>A token the library writes for versioned entities (not negative, not the tombstone, a known state).</summary>
    public bool IsValid => Value >= 0 && !IsTombstone && (Value & 3) != 3;

    /// <summary>The version is committed.</summary>
    public bool IsClean => IsValid && (Value & 3) == CleanState;

    /// <summary>A write of <see cref="Version"/> may still be in flight.</summary>
    public bool IsDirty => IsValid && (Value & 3) == DirtyState;

    /// <summary>The row was deleted by the write of <see cref="Version"/>.</summary>
    public bool IsDeleted => IsValid && (Value & 3) == DeletedState;

    /// <summary>The version the token speaks of (meaningless unless <see cref="IsValid"/>).</summary>
    public long Version => Value >> StateBits;

    /// <summary>
    /// The first version of a row being inserted: never one that an earlier row with the same key used, so a process
    /// still holding a deleted row can never take the new one's tokens for its own. For an <see cref="int"/> version
    /// column only a random start fits (see docs/protocol.md, "Deletes and re-created rows").
    /// </summary>
    public static long NewIncarnationVersion(TimeProvider time, bool narrow)
    {
        ArgumentNullException.ThrowIfNull(time);
        if (narrow)
        {
            return Random.Shared.NextInt64(1, 1L << 30);
        }

        long milliseconds = Math.Max(1, time.GetUtcNow().ToUnixTimeMilliseconds());
        return (milliseconds << IncarnationRandomBits) | Random.Shared.NextInt64(0, 1L << IncarnationRandomBits);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        IsTombstone ? "tombstone"
        : !IsValid ? $"invalid({Value})"
        : $"{(IsClean ? "clean" : IsDirty ? "dirty" : "deleted")}({Version})";

    private static long Checked(long version) =>
        version is >= 0 and <= MaxVersion
            ? version
            : throw new ArgumentOutOfRangeException(nameof(version), version, $"A version must be between 0 and {MaxVersion}.");
}
