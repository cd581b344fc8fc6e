using Microsoft.Extensions.Logging;
using SharedEntities.Stores;

namespace SharedEntities;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "The shared store did not take the dirty token of {Key}; commit allowed: {Allowed}.")]
    public static partial void DirtyRaiseFailed(ILogger logger, string key, bool allowed, Exception? error);

    [LoggerMessage(2, LogLevel.Debug, "Publishing {Key} after the commit failed ({Status}); readers will verify it against the database until its dirty token expires.")]
    public static partial void PublishFailed(ILogger logger, string key, StoreStatus status, Exception? error);

    [LoggerMessage(3, LogLevel.Warning, "The shared store could not answer {Count} operation(s) ({Status}); those entities are verified against the database.")]
    public static partial void StoreOperationsFailed(ILogger logger, int count, StoreStatus status, Exception? error);

    [LoggerMessage(4, LogLevel.Warning, "The shared store holds {Token} for {Key}, ahead of version {Version} that a write was about to commit: the write was refused, and the entity's next check repairs the store. A database restored from a backup, a failover to a lagging replica, or a token written outside the library does this.")]
    public static partial void StoreAheadOnWrite(ILogger logger, string key, string token, long version);

    [LoggerMessage(5, LogLevel.Warning, "{Entity} {Key}: the database holds version {DatabaseVersion}, older than the {Source} {AheadVersion}; the database wins. A database restored from a backup, a failover to a lagging replica, or a token written outside the library does this.")]
    public static partial void DatabaseBehind(ILogger logger, string entity, string key, long databaseVersion, string source, long aheadVersion);

    [LoggerMessage(6, LogLevel.Warning, "{Entity} {Key}: advancing the row's version past the store's failed; its check used the database's row, and the next check tries again.")]
    public static partial void RepairFailed(ILogger logger, string entity, string key, Exception error);

    [LoggerMessage(7, LogLevel.Debug, "{Count} commit(s) made without their dirty token are still waiting for the store; other processes may accept the old versions until it takes them.")]
    public static partial void LateRaisesPending(ILogger logger, int count);

    [LoggerMessage(8, LogLevel.Warning, "{Entity} {Key}: the shared store holds {Found}, which the library cannot have written there ({Why}); it is replaced as a missing token would be. Something other than this library writes the store's keys, or a process put an old value back.")]
    public static partial void DamagedToken(ILogger logger, string entity, string key, string found, string why);

    [LoggerMessage(9, LogLevel.Warning, "The lease fill of {Count} {Entity} entity(ies) gave up: its locking read waited longer than DatabaseWaitTimeout for another session's lock. Those entities were checked with a plain version read; their lease placeholders send other readers to the database until they expire (LeaseTtl).")]
    public static partial void LeaseFillTimedOut(ILogger logger, string entity, int count, Exception error);
}
