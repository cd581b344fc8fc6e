using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using SharedEntities.AdoNet;
using SharedEntities.Protocol;
using SharedEntities.Sqlite;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// The interceptor <see cref="SharedEntitiesDbContextOptionsBuilderExtensions.UseSharedEntities(DbContextOptionsBuilder, Coherence, DbDialect?)"/>
/// registers: attaches materialized entities; on <c>SaveChanges</c> increments the versions of modified shared
/// entities (EF Core then writes <c>WHERE version = @original</c>). The dirty tokens go up before anything can commit:
/// inside an application transaction when it commits (after the guarded writes), otherwise before the save's
/// statements run. The clean tokens are published after the commit: the application's, EF Core's own transaction's,
/// or, when the save needed no transaction (one statement), after the save.
/// </summary>
internal sealed class SharedEntitiesInterceptor(Coherence coherence, DbDialect? dialect)
    : ISaveChangesInterceptor, IDbTransactionInterceptor
{
    private readonly ConditionalWeakTable<DbContext, ContextState> _states = [];

    public Coherence Coherence => coherence;

    public DbContextEntityLoader LoaderOf(DbContext context) => StateOf(context).Loader;

    /// <summary>The interceptor registered on <paramref name="context"/>, or <see langword="null"/>.</summary>
    public static SharedEntitiesInterceptor? Of(DbContext context) =>
        context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.Interceptors?.OfType<SharedEntitiesInterceptor>().FirstOrDefault();

    /// <summary>Attaches a materialized entity.</summary>
    public void Attach(DbContext context, ISharedEntity entity) => coherence.Attach(entity, LoaderOf(context));

    // ---- SaveChanges ----

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is { } context && BeforeSave(context) is { } early)
        {
            try
            {
                early.RaiseDirty();
            }
            catch
            {
                SaveFailed(context); // EF Core reports no failure of its own: the save never started
                throw;
            }
        }

        return result;
    }

    public async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && BeforeSave(context) is { } early)
        {
            try
            {
                await early.RaiseDirtyAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                SaveFailed(context);
                throw;
            }
        }

        return result;
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        if (eventData.Context is { } context && AfterSave(context) is { } publication)
        {
            publication.Publish();
        }

        return result;
    }

    public async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && AfterSave(context) is { } publication)
        {
            await publication.PublishAsync(CancellationToken.None).ConfigureAwait(false); // committed: publish even if canceled now
        }

        return result;
    }

    public void SaveChangesFailed(DbContextErrorEventData eventData)
    {
        if (eventData.Context is { } context)
        {
            SaveFailed(context);
        }
    }

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context)
        {
            SaveFailed(context);
        }

        return Task.CompletedTask;
    }

    // A conflict does not reach SaveChangesFailed: EF Core reports it here, just before it throws.
    public InterceptionResult ThrowingConcurrencyException(ConcurrencyExceptionEventData eventData, InterceptionResult result)
    {
        if (eventData.Context is { } context)
        {
            SaveFailed(context);
        }

        return result;
    }

    public ValueTask<InterceptionResult> ThrowingConcurrencyExceptionAsync(
        ConcurrencyExceptionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(ThrowingConcurrencyException(eventData, result));

    public void SaveChangesCanceled(DbContextEventData eventData)
    {
        if (eventData.Context is { } context)
        {
            SaveFailed(context);
        }
    }

    public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        SaveChangesCanceled(eventData);
        return Task.CompletedTask;
    }

    // ---- transactions ----

    public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        if (eventData.Context is { } context && Prepare(context, transaction) is { } publication)
        {
            using IDisposable? enlistment = DialectOf(context).EnlistStore(transaction.Connection!, transaction);
            publication.RaiseDirty();
        }

        return result;
    }

    public async ValueTask<InterceptionResult> TransactionCommittingAsync(
        DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && Prepare(context, transaction) is { } publication)
        {
            // The enlistment is made and used in this method: the store's batch runs below it in the same flow.
            using IDisposable? enlistment = DialectOf(context).EnlistStore(transaction.Connection!, transaction);
            await publication.RaiseDirtyAsync(cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData)
    {
        if (eventData.Context is { } context && Committed(context, transaction) is { } publication)
        {
            publication.Publish();
        }
    }

    public async Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && Committed(context, transaction) is { } publication)
        {
            await publication.PublishAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData)
    {
        if (eventData.Context is { } context)
        {
            Abandon(context, transaction);
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
            Abandon(context, transaction);
        }
    }

    public Task TransactionFailedAsync(DbTransaction transaction, TransactionErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        TransactionFailed(transaction, eventData);
        return Task.CompletedTask;
    }

    // ---- the bookkeeping ----

    private ContextState StateOf(DbContext context) =>
        _states.GetValue(context, c => new ContextState(new DbContextEntityLoader(c, coherence, DialectOf(c))));

    private DbDialect DialectOf(DbContext context) =>
        dialect ?? context.Database.ProviderName switch
        {
            "Microsoft.EntityFrameworkCore.Sqlite" => SqliteDialect.Instance,
            "Npgsql.EntityFrameworkCore.PostgreSQL" => DbDialect.PostgreSql,
            var other => throw new NotSupportedException(
                $"SharedEntities knows the SQLite and PostgreSQL providers, not '{other}': pass a DbDialect to UseSharedEntities."),
        };

    private static DbTransaction? CurrentTransaction(DbContext context) => context.Database.CurrentTransaction?.GetDbTransaction();

    /// <summary>Increments the versions the save writes; returns the publication to raise now when no application transaction is open.</summary>
    private WritePublication? BeforeSave(DbContext context)
    {
        ContextState state = StateOf(context);
        DbTransaction? transaction = CurrentTransaction(context);
        DropOrphans(context, state, transaction);
        if (context.ChangeTracker.AutoDetectChangesEnabled)
        {
            context.ChangeTracker.DetectChanges(); // SaveChanges would, but only after this interceptor
        }

        state.Saving.Clear();
        state.Added.Clear();
        foreach (EntityEntry entry in context.ChangeTracker.Entries())
        {
            if (entry.Entity is not ISharedEntity entity)
            {
                continue;
            }

            PropertyEntry? version = entity.SharedType.VersionProperty is { } name ? entry.Property(name) : null;
            switch (entry.State)
            {
                case EntityState.Added:
                    if (version is not null && entity is IVersionedSharedEntity { SharedVersion: < 1 })
                    {
                        version.CurrentValue = VersionValue(version, 1);
                    }

                    state.Added.Add(entity);
                    break;
                case EntityState.Modified:
                    long? expected = version is null ? null : Convert.ToInt64(version.OriginalValue, CultureInfo.InvariantCulture);
                    if (version is not null)
                    {
                        version.CurrentValue = VersionValue(version, expected!.Value + 1);
                    }

                    state.Saving.Add(new Write(entity, IsDelete: false, expected));
                    break;
                case EntityState.Deleted:
                    state.Saving.Add(new Write(entity, IsDelete: true, version is null ? null : Convert.ToInt64(version.OriginalValue, CultureInfo.InvariantCulture)));
                    break;
            }
        }

        if (state.Saving.Count == 0 || transaction is not null)
        {
            return null; // in the application's transaction, the tokens go up when it commits
        }

        if (System.Transactions.Transaction.Current is not null)
        {
            SaveFailed(context);
            throw new NotSupportedException(
                "SharedEntities cannot publish a save made in an ambient System.Transactions transaction (TransactionScope): it never sees " +
                "that commit. Use context.Database.BeginTransaction() instead, or save outside the TransactionScope.");
        }

        // Without one, a single statement commits as it runs, and several run in EF Core's own transaction: either way
        // the dirty tokens must be up before the first statement.
        state.RaisedEarly = Publication(state.Saving);
        return state.RaisedEarly;
    }

    /// <summary>Attaches added entities; returns the publication to publish now when the save's statements committed as they ran.</summary>
    private WritePublication? AfterSave(DbContext context)
    {
        ContextState state = StateOf(context);
        foreach (ISharedEntity added in state.Added)
        {
            coherence.Attach(added, state.Loader);
        }

        state.Added.Clear();
        if (state.RaisedEarly is { } early)
        {
            // No transaction of EF Core's committed them (it would have published): they committed statement by statement.
            state.RaisedEarly = null;
            state.Saving.Clear();
            early.MarkCommitted();
            return early;
        }

        if (state.Saving.Count > 0)
        {
            // Not committed yet: the save ran in the application's transaction, which publishes when it commits.
            state.InTransaction.AddRange(state.Saving);
            state.Transaction = CurrentTransaction(context);
            state.Saving.Clear();
        }

        return null;
    }

    private void SaveFailed(DbContext context)
    {
        ContextState state = StateOf(context);
        state.Added.Clear();
        state.RaisedEarly = null; // its dirty tokens make readers ask the database until they expire

        // EF Core did not accept the changes (and rolled back its transaction or savepoint): give back the versions read.
        WithoutDetectChanges(context, () =>
        {
            foreach (Write write in state.Saving)
            {
                if (!write.IsDelete && write.Expected is { } expected && context.Entry(write.Entity) is { State: not EntityState.Detached } entry)
                {
                    PropertyEntry version = entry.Property(write.Entity.SharedType.VersionProperty!);
                    version.CurrentValue = VersionValue(version, expected);
                }
            }
        });
        state.Saving.Clear();
        state.Committing = null;
    }

    /// <summary>A transaction of the context commits: returns the publication whose dirty tokens must go up first.</summary>
    private WritePublication? Prepare(DbContext context, DbTransaction transaction)
    {
        ContextState state = StateOf(context);
        DropOrphans(context, state, transaction);
        if (state.RaisedEarly is { } early)
        {
            state.Committing = early; // EF Core's own transaction for a save whose tokens went up before it
            return null;
        }

        List<Write> writes = [.. state.InTransaction, .. state.Saving];
        if (writes.Count == 0)
        {
            return null;
        }

        WritePublication publication = Publication(writes);
        state.Committing = publication;
        return publication;
    }

    private WritePublication? Committed(DbContext context, DbTransaction transaction)
    {
        ContextState state = StateOf(context);
        if (state.Committing is not { } publication)
        {
            return null;
        }

        _ = transaction;
        state.Committing = null;
        state.InTransaction.Clear();
        state.Transaction = null;
        state.Saving.Clear(); // EF Core's own transaction: SavedChanges comes after the commit
        state.RaisedEarly = null;
        publication.MarkCommitted();
        return publication;
    }

    /// <summary>A transaction of the context was disposed: if its saves were neither committed nor rolled back, they are rolled back.</summary>
    public void TransactionDisposed(DbContext context, DbTransaction transaction) => Abandon(context, transaction);

    private void Abandon(DbContext context, DbTransaction transaction)
    {
        ContextState state = StateOf(context);
        state.Committing = null;
        if (ReferenceEquals(state.Transaction, transaction))
        {
            RolledBack(context, state);
        }
    }

    // Saves accepted in a transaction that ended without a commit we saw (disposed without Rollback): rolled back.
    private void DropOrphans(DbContext context, ContextState state, DbTransaction? current)
    {
        if (state.InTransaction.Count > 0 && !ReferenceEquals(state.Transaction, current))
        {
            RolledBack(context, state);
        }
    }

    private void RolledBack(DbContext context, ContextState state)
    {
        List<Write> writes = [.. state.InTransaction];
        state.InTransaction.Clear();
        state.Transaction = null;

        // EF Core accepted these changes when SaveChanges returned: put back the versions the rows still have, and
        // let the runtime reload the values at the next check.
        WithoutDetectChanges(context, () =>
        {
            foreach (Write write in writes)
            {
                if (write.IsDelete || write.Expected is not { } expected)
                {
                    continue;
                }

                if (context.Entry(write.Entity) is { State: not EntityState.Detached } entry)
                {
                    PropertyEntry version = entry.Property(write.Entity.SharedType.VersionProperty!);
                    version.CurrentValue = VersionValue(version, expected);
                    version.OriginalValue = version.CurrentValue;
                    version.IsModified = false;
                }
                else
                {
                    ((IVersionedSharedEntity)write.Entity).SharedVersion = expected;
                }
            }
        });
        Publication(writes).MarkRolledBack();
    }

    private WritePublication Publication(List<Write> writes)
    {
        var publication = new WritePublication(coherence);
        foreach (Write write in writes)
        {
            if (write.IsDelete)
            {
                publication.AddDelete(write.Entity);
            }
            else
            {
                publication.AddUpdate(write.Entity, write.Expected + 1);
            }
        }

        return publication;
    }

    private static void WithoutDetectChanges(DbContext context, Action action)
    {
        ChangeTracker tracker = context.ChangeTracker;
        bool detect = tracker.AutoDetectChangesEnabled;
        tracker.AutoDetectChangesEnabled = false;
        try
        {
            action();
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = detect;
        }
    }

    private static object VersionValue(PropertyEntry version, long value) =>
        Convert.ChangeType(value, Nullable.GetUnderlyingType(version.Metadata.ClrType) ?? version.Metadata.ClrType, CultureInfo.InvariantCulture);

    /// <summary>An entity written by a save: a versioned one at <see cref="Expected"/> (the version its row had).</summary>
    private sealed record Write(ISharedEntity Entity, bool IsDelete, long? Expected);

    private sealed class ContextState(DbContextEntityLoader loader)
    {
        public DbContextEntityLoader Loader { get; } = loader;

        /// <summary>The writes of the SaveChanges under way.</summary>
        public List<Write> Saving { get; } = [];

        public List<ISharedEntity> Added { get; } = [];

        /// <summary>Writes saved in the application's <see cref="Transaction"/>, published when it commits.</summary>
        public List<Write> InTransaction { get; } = [];

        public DbTransaction? Transaction { get; set; }

        /// <summary>Raised dirty before the statements of a save outside any application transaction.</summary>
        public WritePublication? RaisedEarly { get; set; }

        /// <summary>Raised dirty by the commit under way.</summary>
        public WritePublication? Committing { get; set; }
    }
}

/// <summary>
/// Attaches every materialized shared entity to the runtime of its context. One instance for all contexts: EF Core
/// builds its internal service provider per set of materialization interceptors, so it must not hold a runtime.
/// </summary>
internal sealed class SharedEntitiesMaterializationInterceptor : IMaterializationInterceptor
{
    private readonly ConditionalWeakTable<DbContext, SharedEntitiesInterceptor> _byContext = [];

    private SharedEntitiesMaterializationInterceptor()
    {
    }

    public static SharedEntitiesMaterializationInterceptor Instance { get; } = new();

    public object InitializedInstance(MaterializationInterceptionData materializationData, object entity)
    {
        if (entity is ISharedEntity shared &&
            _byContext.GetValue(materializationData.Context, static c => SharedEntitiesInterceptor.Of(c)
                ?? throw new InvalidOperationException("UseSharedEntities registered no interceptor on this context.")) is { } interceptor)
        {
            interceptor.Attach(materializationData.Context, shared);
        }

        return entity;
    }
}
