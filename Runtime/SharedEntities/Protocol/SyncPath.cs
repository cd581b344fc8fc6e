namespace SharedEntities.Protocol;

/// <summary>
/// The protocol is written once, as <c>async ValueTask</c> methods taking <c>bool async</c>; with <c>async: false</c>
/// they call only synchronous APIs and so complete before they return. This unwraps such a call.
/// </summary>
internal static class SyncPath
{
    public static void Complete(ValueTask task)
    {
        if (!task.IsCompleted)
        {
            throw new InvalidOperationException("A synchronous protocol path did not complete synchronously; a store or loader returned an incomplete task from a synchronous method.");
        }

        task.GetAwaiter().GetResult();
    }
}
