namespace SharedEntities.Stores;

/// <summary>
/// Where the tokens live: in memory (one process), in the database file (several processes on one machine), in
/// memcached (production). A store executes a <see cref="StoreBatch"/>; each operation is atomic for its key.
/// </summary>
/// <remarks>
/// <para>A store never throws because a server is down or misbehaves: the operations it could not perform get
/// <see cref="StoreStatus.Unavailable"/> or <see cref="StoreStatus.Failed"/>, and the protocol falls back to the
/// database. It throws <see cref="OperationCanceledException"/> when the token is cancelled, and argument exceptions
/// for malformed requests, including keys it cannot store (memcached refuses keys longer than 250 bytes or with spaces
/// or control characters; keys made by <see cref="Protocol.StoreKeys"/> are always accepted).</para>
/// <para>Values are 64-bit; <see cref="Protocol.SharedToken"/> gives them meaning. CAS values are compared for
/// equality only.</para>
/// </remarks>
public interface ISharedStore
{
    /// <summary>Executes the batch synchronously (used by property getters, which cannot await).</summary>
    void Execute(StoreBatch batch);

    /// <summary>Executes the batch.</summary>
    ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default);
}
