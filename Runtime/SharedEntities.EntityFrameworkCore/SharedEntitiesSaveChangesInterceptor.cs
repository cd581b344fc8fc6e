using Microsoft.EntityFrameworkCore.Diagnostics;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// SaveChanges of a context with <c>UseSharedEntities</c>: before it, the versions of the shared entities it writes
/// are incremented (EF Core then writes <c>WHERE version = @original</c>) and a transaction is made sure of; after it,
/// inserted entities are attached; on failure, the versions come back. The tokens are raised and published by
/// <see cref="SharedEntitiesTransactionInterceptor"/> around the commit.
/// </summary>
internal sealed class SharedEntitiesSaveChangesInterceptor(SharedEntitiesContexts contexts) : ISaveChangesInterceptor
{
    public SharedEntitiesContexts Contexts => contexts;

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is { } context)
        {
            _ = ContextReads.Of(context); // the first use of a context refuses a model the entity cache cannot serve
            contexts.WritePathOf(context).BeginSave();
        }

        return result;
    }

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(SavingChanges(eventData, result));

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        if (eventData.Context is { } context)
        {
            contexts.WritePathOf(context).EndSave();
        }

        return result;
    }

    public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(SavedChanges(eventData, result));

    public void SaveChangesFailed(DbContextErrorEventData eventData) => Failed(eventData);

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Failed(eventData);
        return Task.CompletedTask;
    }

    public void SaveChangesCanceled(DbContextEventData eventData) => Failed(eventData);

    public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        Failed(eventData);
        return Task.CompletedTask;
    }

    // A conflict does not reach SaveChangesFailed: EF Core reports it here, just before it throws.
    public InterceptionResult ThrowingConcurrencyException(ConcurrencyExceptionEventData eventData, InterceptionResult result)
    {
        Failed(eventData);
        return result;
    }

    public ValueTask<InterceptionResult> ThrowingConcurrencyExceptionAsync(
        ConcurrencyExceptionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(ThrowingConcurrencyException(eventData, result));

    private void Failed(DbContextEventData eventData)
    {
        if (eventData.Context is { } context)
        {
            contexts.WritePathOf(context).FailSave();
        }
    }
}
