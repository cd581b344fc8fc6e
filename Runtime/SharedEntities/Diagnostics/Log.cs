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
}
