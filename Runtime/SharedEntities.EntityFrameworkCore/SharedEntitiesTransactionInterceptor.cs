using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;
using SharedEntities.Protocol;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// The commits of a context with <c>UseSharedEntities</c> — the application's transactions and the ones EF Core begins
/// for a save: the dirty tokens go up as the commit begins (the guarded statements have run and hold the row locks),
/// and the clean tokens are published once it is done. A rolled-back transaction publishes nothing.
/// </summary>
internal sealed class SharedEntitiesTransactionInterceptor(SharedEntitiesContexts contexts) : IDbTransactionInterceptor
{
    public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        if (eventData.Context is { } context && contexts.WritePathOf(context) is var path && path.BeginCommit(transaction) is { } publication)
        {
            // The embedded store (same SQLite file) raises inside this transaction: a second one would wait for it.
            using IDisposable? enlistment = contexts.EnlistStore(context, transaction);
            try
            {
                publication.RaiseDirty();
            }
            catch
            {
                path.CommitRefused();
                throw;
            }
        }

        return result;
    }

    public async ValueTask<InterceptionResult> TransactionCommittingAsync(
        DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && contexts.WritePathOf(context) is var path && path.BeginCommit(transaction) is { } publication)
        {
            // The enlistment is made and used in this method: the store's batch runs below it in the same flow.
            using IDisposable? enlistment = contexts.EnlistStore(context, transaction);
            try
            {
                await publication.RaiseDirtyAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                path.CommitRefused();
                throw;
            }
        }

        return result;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData)
    {
        if (eventData.Context is { } context && contexts.WritePathOf(context).Committed() is { } publication)
        {
            publication.Publish();
        }
    }

    public async Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && contexts.WritePathOf(context).Committed() is { } publication)
        {
            await publication.PublishAsync(CancellationToken.None).ConfigureAwait(false); // committed: publish even if canceled now
        }
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData)
    {
        if (eventData.Context is { } context)
        {
            contexts.WritePathOf(context).RolledBack(transaction);
        }
    }

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        TransactionRolledBack(transaction, eventData);
        return Task.CompletedTask;
    }

    public void TransactionFailed(DbTransaction transaction, TransactionErrorEventData eventData)
    {
        if (eventData.Context is { } context && eventData.Action == "Commit")
        {
            contexts.WritePathOf(context).RolledBack(transaction);
        }
    }

    public Task TransactionFailedAsync(DbTransaction transaction, TransactionErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        TransactionFailed(transaction, eventData);
        return Task.CompletedTask;
    }
}
