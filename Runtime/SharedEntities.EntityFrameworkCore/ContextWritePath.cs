using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using SharedEntities.Protocol;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// The write path of one <see cref="DbContext"/> (docs/efcore.md, "Saving"): which writes of shared entities are on
/// their way to a commit, and what the protocol has done for them. One method per transition; the interceptors only
/// call them. Every path has the protocol's order: the guarded statements (which hold the row locks), the dirty tokens,
/// the commit, the publish. A save outside an application transaction runs in a transaction of EF Core's own, forced,
/// so that there is a moment between its statements and its commit for the dirty tokens.
/// </summary>
internal sealed class ContextWritePath(DbContext context, Coherence coherence, DbContextEntityLoader loader)
{
    private readonly List<Write> _saving = [];
    private readonly List<ISharedEntity> _added = [];
    private readonly List<Write> _inTransaction = [];
    private DbTransaction? _transaction;
    private WritePublication? _committing;
    private AutoTransactionBehavior? _behaviorBeforeSave;

    /// <summary>Where the context's writes of shared entities stand.</summary>
    public enum State
    {
        /// <summary>No write of a shared entity is on its way.</summary>
        Idle,

        /// <summary>A SaveChanges is running: its versions are incremented, its statements not yet accepted.</summary>
        Saving,

        /// <summary>Saves were accepted in the application's transaction, which has not committed yet.</summary>
        SavedInTransaction,

        /// <summary>A transaction with writes of shared entities is committing: their dirty tokens are up.</summary>
        Committing,
    }

    public State Current { get; private set; } = State.Idle;

    public DbContextEntityLoader Loader => loader;

    /// <summary>SavingChanges: increments the versions the save writes and makes sure its statements run in a transaction.</summary>
    public void BeginSave()
    {
        DbTransaction? transaction = CurrentTransaction();
        DropOrphans(transaction);
        if (context.ChangeTracker.AutoDetectChangesEnabled)
        {
            context.ChangeTracker.DetectChanges(); // SaveChanges would, but only after this interceptor
        }

        _saving.Clear();
        _added.Clear();
        foreach (EntityEntry entry in context.ChangeTracker.Entries())
        {
            if (entry.Entity is ISharedEntity entity)
            {
                Collect(entry, entity);
            }
        }

        if (_saving.Count == 0)
        {
            return;
        }

        if (transaction is null && System.Transactions.Transaction.Current is not null)
        {
            FailSave();
            throw new NotSupportedException(
                "SharedEntities cannot publish a save made in an ambient System.Transactions transaction (TransactionScope): it never sees " +
                "that commit. Use context.Database.BeginTransaction() instead, or save outside the TransactionScope.");
        }

        if (transaction is null)
        {
            // A lone UPDATE would commit as it runs, leaving no moment between the statement (which takes the row lock)
            // and the commit: the dirty token must go up there, not before the statement.
            _behaviorBeforeSave = context.Database.AutoTransactionBehavior;
            context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Always;
        }

        Current = State.Saving;
    }

    /// <summary>TransactionCommitting: raises the dirty tokens of everything the transaction wrote, while it holds the row locks.</summary>
    public WritePublication? BeginCommit(DbTransaction transaction)
    {
        DropOrphans(transaction);
        List<Write> writes = [.. _inTransaction, .. _saving];
        if (writes.Count == 0)
        {
            return null;
        }

        _committing = Publication(writes);
        Current = State.Committing;
        return _committing;
    }

    /// <summary>The raise of <see cref="BeginCommit"/> failed: the commit must not happen; EF Core rolls back.</summary>
    public void CommitRefused() => _committing = null;

    /// <summary>TransactionCommitted: the writes are committed; returns the publication to publish.</summary>
    public WritePublication? Committed()
    {
        if (_committing is not { } publication)
        {
            return null;
        }

        _committing = null;
        _inTransaction.Clear();
        _transaction = null;
        bool saveStillRunning = _saving.Count > 0; // EF Core's own transaction: SavedChanges comes after the commit
        _saving.Clear();
        Current = saveStillRunning ? State.Saving : State.Idle;
        publication.MarkCommitted();
        return publication;
    }

    /// <summary>SavedChanges: attaches the rows the save inserted; a save in the application's transaction waits for its commit.</summary>
    public void EndSave()
    {
        RestoreAutoTransactionBehavior();
        foreach (ISharedEntity added in _added)
        {
            coherence.Attach(added, loader);
        }

        _added.Clear();
        if (_saving.Count > 0)
        {
            _inTransaction.AddRange(_saving);
            _transaction = CurrentTransaction();
            _saving.Clear();
        }

        Current = _inTransaction.Count > 0 ? State.SavedInTransaction : State.Idle;
    }

    /// <summary>SaveChangesFailed, canceled or a conflict: EF Core did not accept the changes; the versions read come back.</summary>
    public void FailSave()
    {
        RestoreAutoTransactionBehavior();
        _added.Clear();
        _committing = null;
        WithoutDetectChanges(() =>
        {
            foreach (Write write in _saving)
            {
                if (write.Expected is { } expected && context.Entry(write.Entity) is { State: not EntityState.Detached } entry)
                {
                    PropertyEntry version = entry.Property(write.Entity.SharedType.VersionProperty!);
                    version.CurrentValue = VersionValue(version, expected);
                }
            }
        });
        _saving.Clear();
        Current = _inTransaction.Count > 0 ? State.SavedInTransaction : State.Idle;
    }

    /// <summary>The transaction rolled back, failed to commit, or was disposed without committing.</summary>
    public void RolledBack(DbTransaction transaction)
    {
        _committing = null;
        if (ReferenceEquals(_transaction, transaction))
        {
            AbandonTransaction();
        }

        Current = _saving.Count > 0 ? State.Saving : State.Idle;
    }

    private void Collect(EntityEntry entry, ISharedEntity entity)
    {
        PropertyEntry? version = entity.SharedType.VersionProperty is { } name ? entry.Property(name) : null;
        switch (entry.State)
        {
            case EntityState.Added:
                if (version is not null && entity is IVersionedSharedEntity { SharedVersion: < 1 })
                {
                    // A version no earlier row with this key used: a process holding a deleted row never takes this one for it.
                    bool narrow = (Nullable.GetUnderlyingType(version.Metadata.ClrType) ?? version.Metadata.ClrType) != typeof(long);
                    version.CurrentValue = VersionValue(version, SharedToken.NewIncarnationVersion(TimeProvider.System, narrow));
                }

                _added.Add(entity);
                _saving.Add(new Write(entity, Write.Kind.Insert, Expected: null));
                break;
            case EntityState.Modified:
                _saving.Add(Modified(entity, version));
                break;
            case EntityState.Unchanged when OwnedDataChanged(entry):
                // Only owned data changed: the owner's row is still what the version guards, so the version moves too
                // (EF Core then writes the owner's row with the guard).
                _saving.Add(Modified(entity, version));
                break;
            case EntityState.Deleted:
                _saving.Add(new Write(entity, Write.Kind.Delete, version is null ? null : Convert.ToInt64(version.OriginalValue, CultureInfo.InvariantCulture)));
                break;
        }
    }

    private static Write Modified(ISharedEntity entity, PropertyEntry? version)
    {
        long? expected = version is null ? null : Convert.ToInt64(version.OriginalValue, CultureInfo.InvariantCulture);
        if (version is not null)
        {
            version.CurrentValue = VersionValue(version, expected!.Value + 1);
        }

        return new Write(entity, Write.Kind.Update, expected);
    }

    private static bool OwnedDataChanged(EntityEntry entry)
    {
        foreach (NavigationEntry navigation in entry.Navigations)
        {
            if (navigation.Metadata is not INavigation { ForeignKey.IsOwnership: true, IsOnDependent: false })
            {
                continue;
            }

            // Owned collections are refused when the model is built (SharedEntityConvention): references only.
            if (navigation is ReferenceEntry { TargetEntry: { } target } &&
                (target.State is EntityState.Added or EntityState.Modified or EntityState.Deleted || OwnedDataChanged(target)))
            {
                return true;
            }
        }

        // An owned object replaced or removed is no longer reachable from its owner, but still tracked until the save.
        return entry.Context.ChangeTracker.Entries().Any(o =>
            o.State == EntityState.Deleted && o.Metadata.FindOwnership() is { } ownership &&
            ownership.PrincipalEntityType.IsAssignableFrom(entry.Metadata) &&
            ownership.Properties.Select(p => o.Property(p.Name).OriginalValue)
                .SequenceEqual(ownership.PrincipalKey.Properties.Select(p => entry.Property(p.Name).CurrentValue)));
    }

    private DbTransaction? CurrentTransaction() => context.Database.CurrentTransaction?.GetDbTransaction();

    private void RestoreAutoTransactionBehavior()
    {
        if (_behaviorBeforeSave is { } behavior)
        {
            context.Database.AutoTransactionBehavior = behavior;
            _behaviorBeforeSave = null;
        }
    }

    // Saves accepted in a transaction that ended without a commit we saw (disposed without Rollback): rolled back.
    private void DropOrphans(DbTransaction? current)
    {
        if (_inTransaction.Count > 0 && !ReferenceEquals(_transaction, current))
        {
            AbandonTransaction();
        }
    }

    private void AbandonTransaction()
    {
        List<Write> writes = [.. _inTransaction];
        _inTransaction.Clear();
        _transaction = null;

        // EF Core accepted these changes when SaveChanges returned: put back the versions the rows still have, and let
        // the runtime reload the values at the next check.
        WithoutDetectChanges(() =>
        {
            foreach (Write write in writes)
            {
                if (write.Expected is not { } expected)
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
            switch (write.What)
            {
                case Write.Kind.Delete:
                    publication.AddDelete(write.Entity);
                    break;
                case Write.Kind.Insert:
                    publication.AddInsert(write.Entity);
                    break;
                default:
                    publication.AddUpdate(write.Entity, write.Expected + 1);
                    break;
            }
        }

        return publication;
    }

    private void WithoutDetectChanges(Action action)
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
    private sealed record Write(ISharedEntity Entity, Write.Kind What, long? Expected)
    {
        public enum Kind : byte
        {
            Update,
            Insert,
            Delete,
        }
    }
}
