using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// Attaches every materialized shared entity to the runtime of its context. One instance for all contexts: EF Core
/// builds its internal service provider per set of materialization interceptors, so it must not hold a runtime.
/// </summary>
internal sealed class SharedEntitiesMaterializationInterceptor : IMaterializationInterceptor
{
    private readonly ConditionalWeakTable<DbContext, SharedEntitiesContexts> _byContext = [];

    private SharedEntitiesMaterializationInterceptor()
    {
    }

    public static SharedEntitiesMaterializationInterceptor Instance { get; } = new();

    public object InitializedInstance(MaterializationInterceptionData materializationData, object entity)
    {
        if (entity is ISharedEntity shared)
        {
            _byContext.GetValue(materializationData.Context, static c => SharedEntitiesContexts.Of(c)
                    ?? throw new InvalidOperationException("UseSharedEntities registered no interceptor on this context."))
                .Attach(materializationData.Context, shared);
        }

        return entity;
    }
}
