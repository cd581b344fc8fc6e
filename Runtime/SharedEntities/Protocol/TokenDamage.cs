namespace SharedEntities.Protocol;

/// <summary>
/// Tokens that the library cannot have written for a versioned entity (docs/protocol.md, "Values the library did not
/// write"). Readers and writers treat such a value as a miss: it is replaced by compare-and-swap over exactly what was
/// seen, after a read of the row that keeps writers out.
/// </summary>
internal static class TokenDamage
{
    /// <summary>
    /// How far a token may claim to be ahead of the database and still be repaired by moving the row's version past
    /// it. Gaps the protocol itself can leave (commits a restore lost, a row created again below its deletion's token
    /// on a clock hours behind) stay far below this; a token further ahead is no version any process can hold, and is
    /// replaced instead, so that a forged token cannot use up the version column.
    /// </summary>
    public const long MaxAhead = 1L << 40;

    /// <summary>Why <paramref name="token"/>, read for a copy at version <paramref name="local"/>, is damage, or <see langword="null"/>.</summary>
    public static string? Of(SharedToken token, long local) => token switch
    {
        { IsTombstone: true } => "the deletion marker of serial-only entities, which this entity is not",
        { Value: < 0 } => "a negative number",
        { IsValid: false } => "a number with a state the library never writes",
        { IsClean: true } when token.Version < local => $"older than the copy this process holds (version {local})",
        { IsDirty: true } when token.Version < local => $"a write older than the copy this process holds (version {local})",
        { IsDeleted: true } when token.Version <= local => $"a deletion no later than the copy this process holds (version {local})",
        _ => null,
    };

    /// <summary>
    /// Whether a token claiming <paramref name="claimed"/> while the row is at <paramref name="row"/> (below it) is to be
    /// replaced from a locking read rather than the row moved past it: inside a transaction the runtime cannot write the
    /// row, and a token further than <see cref="MaxAhead"/> ahead is no version any process can hold.
    /// </summary>
    public static bool IsReplacedInsteadOfRepaired(long claimed, long row, bool inTransaction) => inTransaction || claimed - row > MaxAhead;

    /// <summary>Whether a raise of dirty(<paramref name="version"/>) that found <paramref name="found"/> may replace it.</summary>
    public static bool IsReplaceableByWriter(SharedToken found, long version) =>
        !found.IsValid || found.Version - version > MaxAhead;
}
