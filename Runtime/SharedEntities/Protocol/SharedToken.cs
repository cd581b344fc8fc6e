namespace SharedEntities.Protocol;

/// <summary>
/// The value a versioned entity has in the store: <c>2·version + s</c>, where <c>s = 0</c> means a write of that
/// version is in flight ("dirty") and <c>s = 1</c> that it is committed ("clean"). Tokens only ever rise, so a commit
/// is always preceded by its dirty token and a reader can never take an older clean token for the newest one.
/// <see cref="Tombstone"/> is above every token: a deleted entity stays deleted until the tombstone expires.
/// </summary>
public readonly record struct SharedToken(long Value)
{
    /// <summary>The largest version a token can carry.</summary>
    public const long MaxVersion = (long.MaxValue / 2) - 1;

    /// <summary>The token of a deleted entity. Raising to it always wins.</summary>
    public static SharedToken Tombstone { get; } = new(long.MaxValue);

    /// <summary>A committed version.</summary>
    public static SharedToken Clean(long version) => new((Checked(version) * 2) + 1);

    /// <summary>A version whose write is in flight (raised before the commit).</summary>
    public static SharedToken Dirty(long version) => new(Checked(version) * 2);

    /// <summary>The entity was deleted.</summary>
    public bool IsTombstone => Value == long.MaxValue;

    /// <summary>The version is committed.</summary>
    public bool IsClean => !IsTombstone && Value >= 0 && (Value & 1) == 1;

    /// <summary>A write of <see cref="Version"/> may still be in flight.</summary>
    public bool IsDirty => !IsTombstone && Value >= 0 && (Value & 1) == 0;

    /// <summary>The version the token speaks of (meaningless for a tombstone).</summary>
    public long Version => Value >> 1;

    /// <inheritdoc/>
    public override string ToString() =>
        IsTombstone ? "tombstone" : Value < 0 ? $"invalid({Value})" : $"{(IsClean ? "clean" : "dirty")}({Version})";

    private static long Checked(long version) =>
        version is >= 0 and <= MaxVersion
            ? version
            : throw new ArgumentOutOfRangeException(nameof(version), version, $"A version must be between 0 and {MaxVersion}.");
}
