using SharedEntities.Caching;
using SharedEntities.Protocol;

namespace SharedEntities;

/// <summary>What a read of a shared property outside any <see cref="FreshScope"/> does.</summary>
public enum OutsideScopeReads
{
    /// <summary>Check the entity against the store on every such read: always fresh, but one store round trip per read.</summary>
    CheckEveryRead,

    /// <summary>Throw <see cref="ReadOutsideScopeException"/>.</summary>
    Throw,
}

/// <summary>
/// Settings of a <see cref="Coherence"/>. A runtime keeps a copy made when it is built, which cannot change: the
/// options of a running <see cref="Coherence"/> (<see cref="Coherence.Options"/>) throw
/// <see cref="InvalidOperationException"/> when set.
/// </summary>
public sealed class CoherenceOptions
{
    private bool _frozen;

    /// <summary>What a read outside a scope does. Default: <see cref="OutsideScopeReads.CheckEveryRead"/>.</summary>
    public OutsideScopeReads OutsideScopeReads { get; set => field = Settable(value); } = OutsideScopeReads.CheckEveryRead;

    /// <summary>
    /// How long a clean token (or a serial) lives in the store. Writes that bypass the library (SQL scripts, other
    /// applications) are invisible to the protocol; this TTL bounds how long they can go unnoticed. Default: 1 hour.
    /// </summary>
    public TimeSpan TokenTtl { get; set => field = Settable(value); } = TimeSpan.FromHours(1);

    /// <summary>Per-entity overrides of <see cref="TokenTtl"/>, by entity name.</summary>
    public IDictionary<string, TimeSpan> TokenTtlByEntity { get; private set; } = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);

    /// <summary>
    /// How long a dirty token (a write in flight) lives. A writer that dies between its commit and its publish leaves
    /// one; until it expires, readers of that entity verify against the database (safe, slower). Default: 30 seconds.
    /// </summary>
    public TimeSpan DirtyTokenTtl { get; set => field = Settable(value); } = TimeSpan.FromSeconds(30);

    /// <summary>How long the tombstone a delete publishes for the entity's key lives in the store. Default: 1 day.</summary>
    public TimeSpan TombstoneTtl { get; set => field = Settable(value); } = TimeSpan.FromDays(1);

    /// <summary>How long a miss's lease placeholder lives if its winner never fills it. Default: 10 seconds.</summary>
    public TimeSpan LeaseTtl { get; set => field = Settable(value); } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether a commit may go ahead when the store cannot take the entity's dirty token. Default
    /// <see langword="false"/>: the transaction is rolled back with <see cref="SharedStoreUnavailableException"/>.
    /// Only safe when a server that one process cannot reach is unreachable for every process and comes back empty.
    /// </summary>
    public bool AllowCommitWhenStoreUnavailable { get; set => field = Settable(value); }

    /// <summary>
    /// Whether a commit of versioned entities returns without waiting for its publish (the dirty → clean
    /// compare-and-swap after the commit), which then runs in the background. The guarantees do not change: a publish
    /// only ever turns the writer's own dirty token into a clean one, whenever it lands, and until it does readers of
    /// that entity (this process's included) ask the database. It takes one store round trip off every commit.
    /// Default: <see langword="false"/> (a commit returns once its clean tokens are in place). With it on, await
    /// <see cref="Coherence.PublishedAsync"/> where the clean tokens must be in place (tests, shutdown).
    /// </summary>
    public bool PublishInBackground { get; set => field = Settable(value); }

    /// <summary>
    /// How long any database wait the runtime starts for a check may last: the lease winner's locking read (which
    /// waits for writers holding the rows' locks), version reads, reloads, and the repair of a row found behind the
    /// store. PostgreSQL: <c>SET LOCAL lock_timeout</c> for the statements that take row locks; SQLite: the busy
    /// timeout of the <c>BEGIN IMMEDIATE</c> or write-lock statement; every such command also gets a
    /// <see cref="System.Data.Common.DbCommand.CommandTimeout"/> (whole seconds, rounded up) as a backstop. A lease
    /// fill that times out gives up the lease (its placeholder sends other readers to the database until
    /// <see cref="LeaseTtl"/> ends) and answers from a plain version read; any other wait that times out fails the
    /// check with <see cref="DatabaseWaitTimeoutException"/>. Commits (the application's writes) are not bounded by it.
    /// Default: 5 seconds; at most <see cref="int.MaxValue"/> milliseconds.
    /// </summary>
    public TimeSpan DatabaseWaitTimeout { get; set => field = Settable(value); } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A prefix of every store key, to let several applications (or several test databases) share one memcached.
    /// Letters, digits, <c>_ . : -</c>, at most 64 characters. It separates keys, it does not protect them: every
    /// client of the store can read and write every key (docs/protocol.md, "Security").
    /// </summary>
    public string KeyPrefix { get; set => field = Settable(value); } = "";

    /// <summary>
    /// Whether every store key is hashed (<c>{KeyPrefix}~{hash}</c>), so that no entity key value — a user name, an
    /// e-mail address — appears in the store or in a dump of its keys. Without it, only keys that are long or unusual
    /// are hashed. Every process sharing the entities must agree on it (and on <see cref="KeyHashSecret"/>). Default:
    /// <see langword="false"/>.
    /// </summary>
    public bool HashKeys { get; set => field = Settable(value); }

    /// <summary>
    /// A secret that hashed keys are made with (HMAC-SHA-256), so that a client of the store who guesses a key value
    /// cannot confirm it by hashing it; the same in every process. Default: none (SHA-256).
    /// </summary>
    public string? KeyHashSecret { get; set => field = Settable(value); }

    /// <summary>
    /// Whether log messages show entity keys and store keys. Default <see langword="false"/>: they show the entity
    /// type and a short reference of the key (<c>key#…</c>, the same in every process) instead, at every level.
    /// </summary>
    public bool LogKeys { get; set => field = Settable(value); }

    /// <summary>
    /// The process-wide entity cache: whether it is on, which entity types it keeps, how many rows
    /// (docs/entity-cache.md). Default: on, every versioned entity type, 10,000 rows.
    /// </summary>
    public EntityCacheOptions EntityCache { get; private set; } = new();

    /// <summary>The TTL of clean tokens of <paramref name="entityName"/>.</summary>
    public TimeSpan TokenTtlFor(string entityName) =>
        TokenTtlByEntity.TryGetValue(entityName, out TimeSpan ttl) ? ttl : TokenTtl;

    /// <summary>A copy of these settings that cannot change any more (the one a <see cref="Coherence"/> keeps).</summary>
    internal CoherenceOptions FrozenCopy()
    {
        var copy = new CoherenceOptions
        {
            OutsideScopeReads = OutsideScopeReads,
            TokenTtl = TokenTtl,
            DirtyTokenTtl = DirtyTokenTtl,
            TombstoneTtl = TombstoneTtl,
            LeaseTtl = LeaseTtl,
            AllowCommitWhenStoreUnavailable = AllowCommitWhenStoreUnavailable,
            PublishInBackground = PublishInBackground,
            DatabaseWaitTimeout = DatabaseWaitTimeout,
            KeyPrefix = KeyPrefix,
            HashKeys = HashKeys,
            KeyHashSecret = KeyHashSecret,
            LogKeys = LogKeys,
            TokenTtlByEntity = new System.Collections.ObjectModel.ReadOnlyDictionary<string, TimeSpan>(
                new Dictionary<string, TimeSpan>(TokenTtlByEntity, StringComparer.Ordinal)),
            EntityCache = EntityCache.FrozenCopy(),
        };
        copy._frozen = true;
        return copy;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(OutsideScopeReads))
        {
            throw new ArgumentException($"OutsideScopeReads has the undefined value {(int)OutsideScopeReads}.", nameof(OutsideScopeReads));
        }

        RequirePositive(TokenTtl, nameof(TokenTtl));
        RequirePositive(DirtyTokenTtl, nameof(DirtyTokenTtl));
        RequirePositive(TombstoneTtl, nameof(TombstoneTtl));
        RequirePositive(LeaseTtl, nameof(LeaseTtl));
        RequirePositive(DatabaseWaitTimeout, nameof(DatabaseWaitTimeout));
        if (DatabaseWaitTimeout.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentException($"{nameof(DatabaseWaitTimeout)} must be at most {int.MaxValue} ms; it is {DatabaseWaitTimeout}.", nameof(DatabaseWaitTimeout));
        }

        foreach (KeyValuePair<string, TimeSpan> pair in TokenTtlByEntity)
        {
            RequirePositive(pair.Value, $"{nameof(TokenTtlByEntity)}[{pair.Key}]");
        }

        StoreKeys.ValidatePrefix(KeyPrefix);
        if (KeyHashSecret is { Length: 0 })
        {
            throw new ArgumentException("KeyHashSecret must not be empty; leave it null for plain SHA-256.", nameof(KeyHashSecret));
        }

        ArgumentNullException.ThrowIfNull(EntityCache, nameof(EntityCache));
        EntityCache.Validate();
    }

    private T Settable<T>(T value) => _frozen
        ? throw new InvalidOperationException(
            "The options of a built Coherence cannot change: it keeps a copy made when it was built. Set them before building it (AddSharedEntities' configure callback, or the CoherenceOptions given to its constructor).")
        : value;

    private static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{name} must be positive; it is {value}.", name);
        }
    }
}
