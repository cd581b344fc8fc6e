using Microsoft.EntityFrameworkCore.Diagnostics;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// Hands every materialized shared entity to the reads of its context (<see cref="ContextReads.Materialized"/>): attached
/// to the runtime as just read, and offered to the entity cache. One instance for all contexts: EF Core builds its
/// internal service provider per set of materialization interceptors, so it must not hold a runtime.
/// </summary>
internal sealed class SharedEntitiesMaterializationInterceptor : IMaterializationInterceptor
{
    private SharedEntitiesMaterializationInterceptor()
    {
    }

    public static SharedEntitiesMaterializationInterceptor Instance { get; } = new();

    public object InitializedInstance(MaterializationInterceptionData materializationData, object entity)
    {
        if (entity is ISharedEntity shared)
        {
            ContextReads.Of(materializationData.Context).Materialized(shared, materializationData);
        }

        return entity;
    }
}
