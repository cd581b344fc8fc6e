using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using SharedEntities.AdoNet;
using SharedEntities.Loading;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// The <see cref="IEntityLoader"/> of one <see cref="DbContext"/>: entities materialized by the context are attached
/// with it. Inside a transaction of the context, reads run on the context's connection, in that transaction (so a
/// reload sees what the context sees, and an old snapshot is refused with <see cref="StaleSnapshotException"/>); outside
/// one, a check's reads run on a connection of their own (<see cref="DbEntityLoader.CheckConnection"/>), so that a
/// query the application streams over the context's connection does not make them fail. One batched
/// <c>WHERE key IN (…)</c> statement per entity type, through <see cref="DbEntityLoader"/> with a mapping taken from
/// the EF Core model. A reloaded entity that the context tracks gets its original values reset, so that
/// <c>SaveChanges</c> does not write the reloaded values back.
/// </summary>
/// <remarks>
/// An entity kept after its context is disposed (held in a static or a singleton, read in later scopes) is still
/// checked and reloaded: the loader then reads through a loader of the process's own over connections to the same
/// database (made from the context's connection with <see cref="DbDialect.CreateCheckConnection"/>), never through the
/// disposed context, and outside every transaction but an ambient <c>TransactionScope</c>. Its writes go through a
/// new context, as usual. An entity that owns data (EF Core owned types) cannot be reloaded that way: its reload
/// throws <see cref="InvalidOperationException"/>.
/// </remarks>
public sealed class DbContextEntityLoader : IEntityLoader
{

    // Per runtime, per model, dialect and database: the loader that serves the entities of disposed contexts.
    private static readonly ConditionalWeakTable<Coherence, ConcurrentDictionary<(IModel Model, DbDialect Dialect, string Database), KeptEntities>> Kept = [];

    private readonly DbContext _context;
    private readonly Coherence _coherence;
    private readonly DbDialect _dialect;
    private readonly KeptEntities _kept;
    private DbEntityLoader? _inner;
    private volatile bool _contextDisposed;

    /// <summary>Creates the loader of <paramref name="context"/>.</summary>
    public DbContextEntityLoader(DbContext context, Coherence coherence, DbDialect dialect)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(coherence);
        ArgumentNullException.ThrowIfNull(dialect);
        _context = context;
        _coherence = coherence;
        _dialect = dialect;

        // Found while the context lives: once it is disposed, neither its model nor its connection can be asked.
        DbConnection connection = context.Database.GetDbConnection();
        string? connectionString = context.Database.GetConnectionString();
        IModel model = context.Model;
        _kept = Kept.GetValue(coherence, static _ => new())
            .GetOrAdd((model, dialect, connectionString ?? connection.ConnectionString), _ => KeptEntities.Create(coherence, dialect, model, connection, connectionString));
    }

    /// <summary>The context.</summary>
    public DbContext Context => _context;

    /// <summary>The ADO.NET loader it runs its statements through, once the context has a connection (for tests).</summary>
    internal DbEntityLoader? Loader => _inner;

    /// <inheritdoc/>
    public void Reload(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        if (ContextDisposed)
        {
            _kept.ForReload(entities).Reload(entities, found);
            return;
        }

        Inner().Reload(entities, found);
        ResetOriginalValues(entities, found);
        foreach (EntityEntry owned in OwnedEntries(entities, found))
        {
            owned.Reload();
        }
    }

    /// <inheritdoc/>
    public async ValueTask ReloadAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, CancellationToken cancellationToken)
    {
        if (ContextDisposed)
        {
            await _kept.ForReload(entities).ReloadAsync(entities, found, cancellationToken).ConfigureAwait(false);
            return;
        }

        await Inner().ReloadAsync(entities, found, cancellationToken).ConfigureAwait(false);
        ResetOriginalValues(entities, found);
        foreach (EntityEntry owned in OwnedEntries(entities, found))
        {
            await owned.ReloadAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // The owned data of reloaded entities (stored in the owner's row or beside it): the version guards it too, so it
    // must be as new as the owner's reloaded columns.
    private List<EntityEntry> OwnedEntries(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        var owned = new List<EntityEntry>();
        for (int i = 0; i < entities.Count; i++)
        {
            if (found[i] && _context.Entry(entities[i]) is { State: not (EntityState.Detached or EntityState.Added) } entry)
            {
                AddOwned(entry, owned);
            }
        }

        return owned;
    }

    private static void AddOwned(EntityEntry entry, List<EntityEntry> owned)
    {
        foreach (NavigationEntry navigation in entry.Navigations)
        {
            if (navigation.Metadata is INavigation { ForeignKey.IsOwnership: true, IsOnDependent: false } &&
                navigation is ReferenceEntry { TargetEntry: { State: not (EntityState.Detached or EntityState.Added) } target })
            {
                owned.Add(target);
                AddOwned(target, owned);
            }
        }
    }

    /// <inheritdoc/>
    public void ReadVersions(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions) => Statements().ReadVersions(entities, versions);

    /// <inheritdoc/>
    public ValueTask ReadVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions, CancellationToken cancellationToken) =>
        Statements().ReadVersionsAsync(entities, versions, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>Synchronous on purpose: on SQLite the store's enlistment in the lock's transaction must flow back to the caller.</remarks>
    public IVersionLock LockVersions(IReadOnlyList<IVersionedSharedEntity> entities) => Statements().LockVersions(entities);

    /// <inheritdoc/>
    /// <remarks>Not an <see langword="async"/> method, for the same reason as <see cref="LockVersions"/>.</remarks>
    public ValueTask<IVersionLock> LockVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken) =>
        Statements().LockVersionsAsync(entities, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>Once the context is disposed: whether an ambient <c>TransactionScope</c> is present.</remarks>
    public bool ReadsInTransaction =>
        (!ContextDisposed && _context.Database.CurrentTransaction is not null) || System.Transactions.Transaction.Current is not null;

    /// <inheritdoc/>
    /// <remarks>
    /// The transaction only advances versions (the runtime's repair of a store found ahead of the database); its
    /// updates and deletes throw <see cref="NotSupportedException"/>: EF Core entities are written by <c>SaveChanges</c>.
    /// </remarks>
    public ValueTask<IEntityWriteTransaction> BeginWriteAsync(CancellationToken cancellationToken) =>
        Wrap(Statements().BeginWriteAsync(cancellationToken));

    /// <inheritdoc/>
    public ValueTask<IEntityWriteTransaction> BeginRepairAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken) =>
        Wrap(Statements().BeginRepairAsync(entities, cancellationToken));

    // Not an async method: on SQLite the store's enlistment in the new transaction must flow back to the caller.
    private ValueTask<IEntityWriteTransaction> Wrap(ValueTask<IEntityWriteTransaction> begun)
    {
        return begun.IsCompletedSuccessfully ? new(new RepairTransaction(this, begun.Result)) : WrapAsync(begun);

        async ValueTask<IEntityWriteTransaction> WrapAsync(ValueTask<IEntityWriteTransaction> pending) =>
            new RepairTransaction(this, await pending.ConfigureAwait(false));
    }

    // Whether the context is disposed. EF Core has no public flag for it; its Database facade refuses a disposed
    // context, once and for all. (A pooled context is reset and rented again instead of disposed: not covered.)
    private bool ContextDisposed
    {
        get
        {
            if (_contextDisposed)
            {
                return true;
            }

            try
            {
                _ = _context.Database;
                return false;
            }
            catch (ObjectDisposedException)
            {
                _contextDisposed = true;
                return true;
            }
        }
    }

    // What runs the statements: the context's own loader while the context lives, then the process's loader for kept entities.
    private DbEntityLoader Statements() => ContextDisposed ? _kept.Loader : Inner();

    private DbEntityLoader Inner()
    {
        if (_context.Database.GetDbConnection().State != System.Data.ConnectionState.Open)
        {
            // Through EF Core, so that it knows the connection is open and keeps it open for the context's lifetime.
            _context.Database.OpenConnection();
        }

        if (_inner is null)
        {
            DbConnection connection = _context.Database.GetDbConnection();
            _inner = new DbEntityLoader(_coherence, connection, _dialect, Mappings(_context.Model))
            {
                // Its reloads read the shared columns only, not the rows EF Core materializes entities from.
                OffersToCache = false,

                // The checks run on a connection of their own outside the context's transactions: a query the
                // application streams (foreach over a DbSet) keeps a data reader open on the context's connection.
                CheckConnection = _dialect.CreateCheckConnection(connection, _context.Database.GetConnectionString()),
            };
        }

        _inner.Transaction = _context.Database.CurrentTransaction?.GetDbTransaction();
        return _inner;
    }

    // One mapping per [SharedEntity] class of the model, with EF Core's value converters: a class derived from it (a
    // TPH or TPT hierarchy) or a proxy of it is reloaded through it (its shared columns are the class's, in its table).
    private static List<DbEntityMapping> Mappings(IModel model)
    {
        var mappings = new List<DbEntityMapping>();
        foreach (IEntityType entityType in model.GetEntityTypes())
        {
            if (SharedEntityConvention.SharedTypeOf(entityType.ClrType) is not { } shared || shared.ClrType != entityType.ClrType ||
                entityType.GetTableName() is not { } tableName)
            {
                continue;
            }

            var table = StoreObjectIdentifier.Table(tableName, entityType.GetSchema());
            string Column(string property) =>
                entityType.FindProperty(property)?.GetColumnName(table)
                ?? throw new InvalidOperationException($"{entityType.DisplayName()}.{property} is not mapped to a column of {tableName}.");

            var columns = shared.Properties.ToDictionary(p => p.Name, p => Column(p.Name));
            DbEntityMapping mapping = DbEntityMapping.ForType(entityType.ClrType, tableName, Column(shared.KeyProperty), shared.VersionProperty is { } v ? Column(v) : null, columns);
            foreach (SharedPropertyInfo property in shared.Properties)
            {
                if (entityType.FindProperty(property.Name)?.GetTypeMapping().Converter is { } converter)
                {
                    mapping = mapping.WithConversion(property.Name, converter.ProviderClrType, converter.ConvertFromProvider, converter.ConvertToProvider);
                }
            }

            mappings.Add(mapping);
        }

        return mappings;
    }

    private void ResetOriginalValues(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        ChangeTracker tracker = _context.ChangeTracker;
        bool detect = tracker.AutoDetectChangesEnabled;
        tracker.AutoDetectChangesEnabled = false; // Entry() must not see the reloaded fields as the user's changes
        try
        {
            for (int i = 0; i < entities.Count; i++)
            {
                if (!found[i])
                {
                    continue;
                }

                EntityEntry entry = _context.Entry(entities[i]);
                if (entry.State is EntityState.Detached or EntityState.Added)
                {
                    continue;
                }

                SharedEntityType shared = entities[i].SharedType;
                foreach (SharedPropertyInfo property in shared.Properties)
                {
                    Accept(entry.Property(property.Name));
                }

                if (shared.VersionProperty is { } version)
                {
                    Accept(entry.Property(version));
                }
            }
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = detect;
        }
    }

    // After a version repair the row is at the new version: EF Core must guard the next save with it.
    private void AcceptVersions(IEnumerable<IVersionedSharedEntity> entities)
    {
        if (ContextDisposed)
        {
            return; // a kept entity: no context guards its saves
        }

        ChangeTracker tracker = _context.ChangeTracker;
        bool detect = tracker.AutoDetectChangesEnabled;
        tracker.AutoDetectChangesEnabled = false;
        try
        {
            foreach (IVersionedSharedEntity entity in entities)
            {
                if (_context.Entry(entity) is { State: not (EntityState.Detached or EntityState.Added) } entry)
                {
                    Accept(entry.Property(entity.SharedType.VersionProperty!));
                }
            }
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = detect;
        }
    }

    private static void Accept(PropertyEntry property)
    {
        property.OriginalValue = property.CurrentValue;
        property.IsModified = false;
    }

    private sealed class RepairTransaction(DbContextEntityLoader loader, IEntityWriteTransaction inner) : IEntityWriteTransaction
    {
        private readonly List<(IVersionedSharedEntity Entity, long Version)> _advanced = [];

        public ValueTask<bool> UpdateAsync(ISharedEntity entity, long? expectedVersion, long? newVersion, CancellationToken cancellationToken) =>
            throw SavedByEfCore();

        public ValueTask<bool> DeleteAsync(ISharedEntity entity, long? expectedVersion, CancellationToken cancellationToken) =>
            throw SavedByEfCore();

        public async ValueTask<bool> AdvanceVersionAsync(IVersionedSharedEntity entity, long expectedVersion, long newVersion, CancellationToken cancellationToken)
        {
            bool advanced = await inner.AdvanceVersionAsync(entity, expectedVersion, newVersion, cancellationToken).ConfigureAwait(false);
            if (advanced)
            {
                _advanced.Add((entity, newVersion));
            }

            return advanced;
        }

        public async ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            await inner.CommitAsync(cancellationToken).ConfigureAwait(false);

            // The rows are at their new versions now; the context's next save must be guarded by them.
            foreach ((IVersionedSharedEntity entity, long version) in _advanced)
            {
                entity.SharedVersion = version;
            }

            loader.AcceptVersions(_advanced.Select(a => a.Entity));
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();

        private static NotSupportedException SavedByEfCore() => new(
            "Entities loaded through EF Core are written by DbContext.SaveChanges (UseSharedEntities guards it with the version column and " +
            "publishes after the commit): call context.SaveChangesSharedAsync() instead of FreshScope.CommitAsync().");
    }

    /// <summary>
    /// The loader of one runtime, model and database that serves the entities of disposed contexts: over connections
    /// to the same database as the contexts' (<see cref="DbDialect.CreateCheckConnection"/>), thread-safe.
    /// </summary>
    private sealed class KeptEntities(Lazy<DbEntityLoader>? loader, HashSet<Type> owners, string why)
    {
        /// <summary>The loader, made on first use (a model whose mappings the loader cannot build fails then, not when a context is created).</summary>
        /// <exception cref="InvalidOperationException">No connection to the context's database can be made.</exception>
        public DbEntityLoader Loader => loader?.Value ?? throw new InvalidOperationException(why);

        public static KeptEntities Create(Coherence coherence, DbDialect dialect, IModel model, DbConnection connection, string? connectionString)
        {
            var owners = new HashSet<Type>();
            foreach (IEntityType entityType in model.GetEntityTypes())
            {
                if (entityType.GetNavigations().Any(n => n.ForeignKey.IsOwnership && !n.IsOnDependent))
                {
                    owners.Add(entityType.ClrType);
                }
            }

            if (dialect.CreateCheckConnection(connection, connectionString) is not { } prototype)
            {
                return new KeptEntities(null, owners,
                    "A shared entity whose DbContext was disposed is checked on a connection of its own to the context's database, and this " +
                    $"database ({connection.GetType().Name}) cannot be reached by another connection (a private in-memory SQLite database, say). " +
                    "Load the entity again in a new context in each scope, or keep its context alive.");
            }

            var dataSource = new ClonedConnections(prototype, dialect, connectionString);
            return new KeptEntities(new Lazy<DbEntityLoader>(() => new DbEntityLoader(coherence, dataSource, dialect, Mappings(model)) { OffersToCache = false }), owners, "");
        }

        /// <summary>The loader, for a reload of <paramref name="entities"/>, which must not own data of their own.</summary>
        public DbEntityLoader ForReload(IReadOnlyList<ISharedEntity> entities)
        {
            foreach (ISharedEntity entity in entities)
            {
                if (owners.Contains(entity.GetType()))
                {
                    throw new InvalidOperationException(
                        $"{entity.SharedType.Name} {entity.SharedKey} changed in the database after the DbContext that loaded it was disposed, and it " +
                        "owns data (owned types) that only a context can reload with it. Load it again in a new context in the scope that reads it.");
                }
            }

            return Loader;
        }
    }

    /// <summary>A data source of new connections like one prototype (its clones, or its provider's connections with its string).</summary>
    private sealed class ClonedConnections(DbConnection prototype, DbDialect dialect, string? connectionString) : DbDataSource
    {
        public override string ConnectionString => connectionString ?? prototype.ConnectionString;

        protected override DbConnection CreateDbConnection() =>
            dialect.CreateCheckConnection(prototype, connectionString)
            ?? throw new InvalidOperationException($"{dialect.GetType().Name} made no connection like {prototype.GetType().Name}.");
    }
}
