using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// The first connection a context opens is its first use: a model that the entity cache cannot serve is refused
/// there (<see cref="ContextReads.Of"/>), before any statement runs, rather than at the first row served or reloaded.
/// Stateless, one instance for all contexts.
/// </summary>
internal sealed class SharedEntitiesConnectionInterceptor : DbConnectionInterceptor
{
    private SharedEntitiesConnectionInterceptor()
    {
    }

    public static SharedEntitiesConnectionInterceptor Instance { get; } = new();

    public override InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result)
    {
        FirstUse(eventData);
        return result;
    }

    public override ValueTask<InterceptionResult> ConnectionOpeningAsync(
        DbConnection connection, ConnectionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        FirstUse(eventData);
        return ValueTask.FromResult(result);
    }

    private static void FirstUse(ConnectionEventData eventData)
    {
        if (eventData.Context is { } context)
        {
            _ = ContextReads.Of(context);
        }
    }
}
