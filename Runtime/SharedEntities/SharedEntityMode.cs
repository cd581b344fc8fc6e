namespace SharedEntities;

/// <summary>How an entity type proves that a copy is fresh.</summary>
public enum SharedEntityMode
{
    /// <summary>
    /// Strict: the row has an application-managed version column. The database is the authority; the store holds a
    /// token <c>2·version + clean</c> that only rises. No lost update, no stale read accepted inside a scope.
    /// </summary>
    Versioned,

    /// <summary>
    /// Serial-only: no version column, no schema change; a serial number lives only in the store and is bumped atomically after each
    /// commit. Best effort: see <c>docs/protocol.md</c> for the windows in which a stale copy can be accepted.
    /// </summary>
    SerialOnly,
}
