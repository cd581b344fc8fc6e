using System.Data;
using System.Collections.Immutable;
using System.Data.Common;
using System.Runtime.CompilerServices;
using System.Text;
using SharedEntities.Caching;
using SharedEntities.Loading;
using SharedEntities.Protocol;

namespace SharedEntities.AdoNet;

/// <summary>
/// An <see cref="IEntityLoader"/> over ADO.NET (Dapper users pass their connection): batched <c>WHERE key IN (…)</c>
/// reads, version-guarded <c>UPDATE</c>/<c>DELETE</c>, locked version reads for lease fills, and
/// <see cref="StaleSnapshotException"/> where the database cannot see the newest commit. Finds by key are served from
/// the process-wide entity cache (<see cref="Coherence.Cache"/>) when the store vouches for the cached row. See
/// docs/adonet.md.
/// </summary>
/// <remarks>
/// <para>Two kinds of loader:</para>
/// <list type="bullet">
/// <item><description><b>Connection-bound</b> (<see cref="DbEntityLoader(Coherence, DbConnection, DbDialect, IEnumerable{DbEntityMapping})"/>):
/// like a <c>DbContext</c>, the loader and its connection serve one flow at a time. The loader opens the connection if
/// it is closed and never closes it. When the application runs its own transaction on the connection, it tells the
/// loader through <see cref="Transaction"/> (or begins it with <see cref="BeginTransaction"/>): reads then run in it,
/// so a reload sees what that transaction sees — and the runtime refuses an old snapshot with
/// <see cref="StaleSnapshotException"/>. A scope cannot commit inside an application transaction (the loader must own
/// the commit to publish after it): <see cref="BeginWriteAsync"/> throws then.</description></item>
/// <item><description><b>Data-source</b> (<see cref="DbEntityLoader(Coherence, DbDataSource, DbDialect, IEnumerable{DbEntityMapping})"/>):
/// thread-safe, one loader for the whole process. Every operation (a find, a check's reads and locked reads, a
/// commit, a repair) takes a pooled connection from <see cref="DataSource"/> for its duration and gives it back. It
/// has no connection and no application transaction of its own (<see cref="Connection"/>, <see cref="BeginTransaction"/>
/// and setting <see cref="Transaction"/> throw); an ambient <c>TransactionScope</c> counts as a transaction of the
/// application.</description></item>
/// </list>
/// </remarks>
public sealed class DbEntityLoader : IEntityLoader
{
    private readonly Dictionary<Type, DbEntityMapping> _mappings;
    private readonly DbConnection? _connection;

    // Shared by a loader and the loaders that run its statements (its check connection's, its leases): the count of
    // statements executed, for tests.
    private readonly StrongBox<int> _statements;

    // A loader over one connection taken from a data source's pool for one operation: disposed (given back) after it.
    private readonly bool _leased;
    private DbTransaction? _transaction;
    private DbConnection? _checkConnection;
    private DbEntityLoader? _checks;

    /// <summary>Creates a connection-bound loader.</summary>
    /// <param name="coherence">The runtime the entities found are attached to.</param>
    /// <param name="connection">The connection (opened on first use if closed).</param>
    /// <param name="dialect"><see cref="DbDialect.PostgreSql"/>, <c>SqliteDialect.Instance</c> (package <c>SharedEntities.Sqlite</c>), or one of your own.</param>
    /// <param name="mappings">One per entity class.</param>
    public DbEntityLoader(Coherence coherence, DbConnection connection, DbDialect dialect, params IEnumerable<DbEntityMapping> mappings)
        : this(coherence, dialect, mappings)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
    }

    /// <summary>
    /// Creates a data-source loader: thread-safe, one for the whole process; each operation takes a connection from
    /// <paramref name="dataSource"/>'s pool for its duration (e.g. <c>NpgsqlDataSource.Create(connectionString)</c>, or
    /// <c>SqliteFactory.Instance.CreateDataSource(connectionString)</c>).
    /// </summary>
    /// <param name="coherence">The runtime the entities found are attached to.</param>
    /// <param name="dataSource">Where the connections come from. The loader does not dispose it.</param>
    /// <param name="dialect"><see cref="DbDialect.PostgreSql"/>, <c>SqliteDialect.Instance</c> (package <c>SharedEntities.Sqlite</c>), or one of your own.</param>
    /// <param name="mappings">One per entity class.</param>
    public DbEntityLoader(Coherence coherence, DbDataSource dataSource, DbDialect dialect, params IEnumerable<DbEntityMapping> mappings)
        : this(coherence, dialect, mappings)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        DataSource = dataSource;
    }

    private DbEntityLoader(Coherence coherence, DbDialect dialect, IEnumerable<DbEntityMapping> mappings)
    {
        ArgumentNullException.ThrowIfNull(coherence);
        ArgumentNullException.ThrowIfNull(dialect);
        ArgumentNullException.ThrowIfNull(mappings);
        Coherence = coherence;
        Dialect = dialect;
        _statements = new StrongBox<int>();
        _mappings = [];
        foreach (DbEntityMapping mapping in mappings)
        {
            _mappings.Add(mapping.EntityType, mapping);
        }
    }

    // A loader that runs statements for owner on connection: its check connection's, or a lease of its data source's.
    private DbEntityLoader(DbEntityLoader owner, DbConnection connection, bool leased)
    {
        Coherence = owner.Coherence;
        Dialect = owner.Dialect;
        _mappings = owner._mappings;
        _statements = owner._statements;
        _connection = connection;
        _leased = leased;
    }

    /// <summary>The runtime.</summary>
    public Coherence Coherence { get; }

    /// <summary>
    /// The connection of a connection-bound loader.
    /// </summary>
    /// <exception cref="InvalidOperationException">A data-source loader has no connection of its own (see <see cref="DataSource"/>).</exception>
    public DbConnection Connection => _connection ?? throw new InvalidOperationException(
        "This DbEntityLoader was built over a DbDataSource: each operation takes a connection from DataSource for its duration, and the loader " +
        "has no connection of its own. Run the application's statements on a connection of the data source.");

    /// <summary>
    /// Where a data-source loader takes a connection for each operation; <see langword="null"/> for a connection-bound
    /// loader (<see cref="Connection"/>).
    /// </summary>
    public DbDataSource? DataSource { get; }

    /// <summary>The dialect.</summary>
    public DbDialect Dialect { get; }

    /// <summary>
    /// Whether rows this loader reads outside every application transaction (finds, and the reloads of a check) are
    /// offered to the process-wide entity cache (<see cref="Coherence.Cache"/>), from which later finds by key of any
    /// loader with an equal mapping are served. Turn it off for a loader whose reads do not return the whole row that
    /// its entities are materialized from (EF Core's loader reads only the shared columns). Default:
    /// <see langword="true"/>.
    /// </summary>
    public bool OffersToCache { get; init; } = true;

    /// <summary>The number of statements executed (a batched read counts once), on <see cref="CheckConnection"/> and on the data source's connections too.</summary>
    internal int Statements => Volatile.Read(ref _statements.Value);

    /// <summary>
    /// A second, closed connection to the same database, on which the runtime's checks run while no application
    /// transaction is open — version reads, the lease winner's locked read, reloads of stale entities — opened for each
    /// check and closed (given back to the pool) after it. Set it when the application touches shared entities while
    /// it holds a data reader open on <see cref="Connection"/>: a check on that connection would fail (Npgsql:
    /// "Connection is busy"), or, on SQLite, run in the reader's snapshot. Inside an application transaction the
    /// checks stay on <see cref="Connection"/>, in the transaction's snapshot. Finds, inserts, commits and repairs
    /// always run on <see cref="Connection"/>. The loader neither disposes it nor uses it concurrently. Default:
    /// <see langword="null"/> (every statement on <see cref="Connection"/>). A data-source loader needs none: every
    /// operation has a connection of its own.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set on a data-source loader.</exception>
    public DbConnection? CheckConnection
    {
        get => _checkConnection;
        set
        {
            if (value is not null)
            {
                ThrowIfDataSource("a check connection");
            }

            _checkConnection = value;
            _checks = value is null ? null : new DbEntityLoader(this, value, leased: false);
        }
    }

    /// <summary>
    /// The application's transaction on <see cref="Connection"/>, if any; finished transactions are ignored. Always
    /// <see langword="null"/> on a data-source loader.
    /// </summary>
    /// <exception cref="InvalidOperationException">A transaction is set on a data-source loader.</exception>
    public DbTransaction? Transaction
    {
        get
        {
            try
            {
                return _transaction is { Connection: not null } active ? active : null;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
        }

        set
        {
            if (value is not null)
            {
                ThrowIfDataSource("an application transaction");
            }

            _transaction = value;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A connection-bound loader: whether <see cref="Transaction"/> is set. A data-source loader: whether an ambient
    /// <c>TransactionScope</c> is present (the connections it opens in one enlist in it, if the provider enlists).
    /// </remarks>
    public bool ReadsInTransaction => Transaction is not null || (DataSource is not null && System.Transactions.Transaction.Current is not null);

    /// <summary>Begins an application transaction on the connection and uses it for the loader's reads.</summary>
    /// <exception cref="InvalidOperationException">The loader is a data-source loader.</exception>
    public DbTransaction BeginTransaction(IsolationLevel isolationLevel)
    {
        ThrowIfDataSource("an application transaction");
        EnsureOpen();
        DbTransaction transaction = Connection.BeginTransaction(isolationLevel);
        Transaction = transaction;
        return transaction;
    }

    private void ThrowIfDataSource(string what)
    {
        if (DataSource is not null)
        {
            throw new InvalidOperationException(
                $"A DbEntityLoader over a DbDataSource cannot take {what}: each of its operations runs on a pooled connection of its own, " +
                "taken for that operation only. For reads in the application's transaction, use a connection-bound loader " +
                "(new DbEntityLoader(coherence, connection, dialect, mappings)) on the transaction's connection.");
        }
    }

    /// <summary>The mapping of <paramref name="entityType"/>.</summary>
    public DbEntityMapping MappingOf(Type entityType)
    {
        ArgumentNullException.ThrowIfNull(entityType);
        // An instance may be of a class derived from the mapped one: a class of an ORM's inheritance hierarchy, or a
        // proxy an ORM made of it (lazy loading), whose shared columns are the mapped class's.
        for (Type? type = entityType; type is not null; type = type.BaseType)
        {
            if (_mappings.TryGetValue(type, out DbEntityMapping? mapping))
            {
                return mapping;
            }
        }

        throw new InvalidOperationException($"{entityType} is not mapped in this DbEntityLoader.");
    }

    /// <summary>
    /// Loads the row with key <paramref name="key"/> into a new <typeparamref name="T"/> attached to the runtime (and
    /// tracked by the current scope), or <see langword="null"/> if there is none. Outside every application
    /// transaction the row comes from the entity cache when the store vouches for the cached version (no database
    /// statement), else from the database, whose row then refills the cache; either way the entity counts as checked
    /// in the current scope (<see cref="Coherence.AttachFresh"/>). Each call returns a new instance.
    /// </summary>
    public T? Find<T>(object key)
        where T : class, ISharedEntity => SyncComplete(FindCoreAsync<T>([key], async: false, CancellationToken.None)) is [var found] ? found : null;

    /// <inheritdoc cref="Find"/>
    public async Task<T?> FindAsync<T>(object key, CancellationToken cancellationToken = default)
        where T : class, ISharedEntity => await FindCoreAsync<T>([key], async: true, cancellationToken).ConfigureAwait(false) is [var found] ? found : null;

    /// <summary>
    /// Loads the rows with the given keys: those the entity cache can serve with one store round trip for all of them,
    /// the others in one query (per chunk of keys); rows that do not exist are left out. See <see cref="Find"/>.
    /// </summary>
    public Task<IReadOnlyList<T>> FindManyAsync<T>(IEnumerable<object> keys, CancellationToken cancellationToken = default)
        where T : class, ISharedEntity
    {
        ArgumentNullException.ThrowIfNull(keys);
        return FindCoreAsync<T>([.. keys], async: true, cancellationToken).AsTask();
    }

    /// <summary>
    /// Inserts a new entity's row and attaches it. A versioned entity whose version is below 1 starts at a version that
    /// no earlier row with the same key used (<see cref="SharedToken.NewIncarnationVersion"/>), so that a process still
    /// holding a deleted row never takes the new one for it. Outside an application transaction the insert runs in a
    /// transaction of its own that raises the dirty token before it commits and publishes the new version after; inside
    /// one, nothing is published (readers of the key ask the database until its token catches up).
    /// </summary>
    public async Task<T> InsertAsync<T>(T entity, CancellationToken cancellationToken = default)
        where T : class, ISharedEntity
    {
        ArgumentNullException.ThrowIfNull(entity);
        DbEntityMapping mapping = MappingOf(entity.GetType());
        if (entity is IVersionedSharedEntity { SharedVersion: < 1 } versioned)
        {
            versioned.SharedVersion = SharedToken.NewIncarnationVersion(TimeProvider.System, mapping.NarrowVersion);
        }

        if (Transaction is { } application)
        {
            await EnsureOpenAsync(cancellationToken).ConfigureAwait(false);
            await InsertRowAsync(entity, mapping, application, cancellationToken).ConfigureAwait(false);
            return Coherence.Attach(entity, this);
        }

        var publication = new WritePublication(Coherence);
        IEntityWriteTransaction transaction = await BeginWriteAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            var write = (WriteTransaction)transaction;
            await write.Loader.InsertRowAsync(entity, mapping, write.Transaction, cancellationToken).ConfigureAwait(false);
            publication.AddInsert(entity);
            await publication.RaiseDirtyAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        Coherence.Attach(entity, this);
        publication.MarkCommitted();
        await publication.PublishAsync(CancellationToken.None).ConfigureAwait(false);
        return entity;
    }

    private async ValueTask InsertRowAsync(ISharedEntity entity, DbEntityMapping mapping, DbTransaction transaction, CancellationToken cancellationToken)
    {
        await using DbCommand command = CreateCommand(transaction);
        var columns = new List<string> { mapping.KeyColumn };
        AddParameter(command, entity.SharedKey);
        if (mapping.VersionColumn is { } versionColumn)
        {
            columns.Add(versionColumn);
            AddParameter(command, ((IVersionedSharedEntity)entity).SharedVersion);
        }

        for (int i = 0; i < mapping.Columns.Count; i++)
        {
            columns.Add(mapping.Columns[i]);
            AddParameter(command, mapping.ToColumn(i, entity.GetSharedValue(i)));
        }

        command.CommandText =
            $"INSERT INTO {Dialect.Quote(mapping.Table)} ({string.Join(", ", columns.Select(Dialect.Quote))}) " +
            $"VALUES ({string.Join(", ", Enumerable.Range(0, columns.Count).Select(Dialect.ParameterName))})";
        CountStatement();
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>Outside every application transaction the rows read are offered to the entity cache (<see cref="OffersToCache"/>).</remarks>
    public void Reload(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        DbEntityLoader on = ChecksOn(ownTransaction: false);
        try
        {
            SyncComplete(on.ReloadCoreAsync(entities, found, async: false, CancellationToken.None));
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }

        EndCheck(on);
        Offer(entities, found);
    }

    /// <inheritdoc cref="Reload"/>
    public async ValueTask ReloadAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, CancellationToken cancellationToken)
    {
        DbEntityLoader on = await ChecksOnAsync(ownTransaction: false, async: true, cancellationToken).ConfigureAwait(false);
        try
        {
            await on.ReloadCoreAsync(entities, found, async: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }

        await EndCheckAsync(on).ConfigureAwait(false);
        Offer(entities, found);
    }

    /// <inheritdoc/>
    public void ReadVersions(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions)
    {
        DbEntityLoader on = ChecksOn(ownTransaction: false);
        try
        {
            SyncComplete(on.ReadVersionsCoreAsync(entities, versions, on.Transaction, locking: null, async: false, CancellationToken.None));
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }

        EndCheck(on);
    }

    /// <inheritdoc/>
    public async ValueTask ReadVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions, CancellationToken cancellationToken)
    {
        DbEntityLoader on = await ChecksOnAsync(ownTransaction: false, async: true, cancellationToken).ConfigureAwait(false);
        try
        {
            await on.ReadVersionsCoreAsync(entities, versions, on.Transaction, locking: null, async: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }

        await EndCheckAsync(on).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public IVersionLock LockVersions(IReadOnlyList<IVersionedSharedEntity> entities)
    {
        DbEntityLoader on = ChecksOn(ownTransaction: true);
        VersionLock versionLock;
        try
        {
            versionLock = (VersionLock)SyncComplete(on.LockVersionsCoreAsync(entities, async: false, CancellationToken.None));
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }

        // Here, in a synchronous method, and not inside the async core: an AsyncLocal set inside an async method is
        // discarded when it returns, and the runtime's fills must see the enlistment.
        versionLock.Enlistment = EnlistStore(on.Connection, versionLock.Transaction);
        versionLock.ReleaseAfter = on == this ? null : on;
        return versionLock;
    }

    /// <inheritdoc/>
    public ValueTask<IVersionLock> LockVersionsAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken)
    {
        if (Dialect is IStoreEnlistingDialect)
        {
            // Synchronously (and not in an async method), so that the store enlistment made under the lock flows back
            // to the runtime's caller.
            cancellationToken.ThrowIfCancellationRequested();
            return new ValueTask<IVersionLock>(LockVersions(entities));
        }

        return LockVersionsOnAsync(entities, cancellationToken);
    }

    private async ValueTask<IVersionLock> LockVersionsOnAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken)
    {
        DbEntityLoader on = await ChecksOnAsync(ownTransaction: true, async: true, cancellationToken).ConfigureAwait(false);
        try
        {
            var versionLock = (VersionLock)await on.LockVersionsCoreAsync(entities, async: true, cancellationToken).ConfigureAwait(false);
            versionLock.ReleaseAfter = on == this ? null : on;
            return versionLock;
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }
    }

    // Where a check's statements run. A data-source loader: on a connection of the pool, for this operation only.
    // A connection-bound loader: on the check connection while no application transaction is open, else here, in the
    // transaction (whose snapshot the stale-snapshot detection depends on). An ambient System.Transactions
    // transaction counts: a second connection would enlist in it as a transaction of its own.
    private ValueTask<DbEntityLoader> ChecksOnAsync(bool ownTransaction, bool async, CancellationToken cancellationToken) =>
        DataSource is not null ? LeaseAsync(ownTransaction, async, cancellationToken)
        : new(_checks is { } checks && Transaction is null && System.Transactions.Transaction.Current is null ? checks : this);

    private DbEntityLoader ChecksOn(bool ownTransaction) => SyncComplete(ChecksOnAsync(ownTransaction, async: false, CancellationToken.None));

    // Where a find, an insert, a commit or a repair runs: a connection-bound loader's own connection, or a lease.
    private ValueTask<DbEntityLoader> WritesOnAsync(bool ownTransaction, bool async, CancellationToken cancellationToken) =>
        DataSource is not null ? LeaseAsync(ownTransaction, async, cancellationToken) : new(this);

    // A loader over a connection of the data source's pool, for one operation (EndCheck gives it back). The loader's
    // own transactions (a lease fill's lock, a repair) must not enlist in an ambient TransactionScope: they are the
    // runtime's, short, and end before the application's does. Their connection is opened with it suppressed; a
    // read's connection enlists, if the provider enlists, so that it sees what the application's transaction sees.
    private async ValueTask<DbEntityLoader> LeaseAsync(bool ownTransaction, bool async, CancellationToken cancellationToken)
    {
        DbConnection connection = DataSource!.CreateConnection();
        if (ownTransaction && System.Transactions.Transaction.Current is not null)
        {
            try
            {
                using var suppressed = new System.Transactions.TransactionScope(
                    System.Transactions.TransactionScopeOption.Suppress, System.Transactions.TransactionScopeAsyncFlowOption.Enabled);
                if (async)
                {
                    await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    connection.Open();
                }
            }
            catch
            {
                await DisposeAsync(connection, async).ConfigureAwait(false);
                throw;
            }
        }

        return new DbEntityLoader(this, connection, leased: true);
    }

    // Gives back what a statement ran on: a lease is disposed (its connection goes back to the pool), the check
    // connection closed; this loader's own connection stays open.
    private void EndCheck(DbEntityLoader on)
    {
        if (on != this)
        {
            on.Release();
        }
    }

    private void Release()
    {
        if (_leased)
        {
            _connection!.Dispose();
        }
        else
        {
            _connection!.Close();
        }
    }

    private async ValueTask ReleaseAsync()
    {
        if (_leased)
        {
            await _connection!.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            await _connection!.CloseAsync().ConfigureAwait(false);
        }
    }

    // After a failed statement: the failure says more than a close that fails too (Npgsql refuses to close a
    // connector it still considers busy).
    private void CloseAfterFailure(DbEntityLoader on)
    {
        try
        {
            EndCheck(on);
        }
        catch (Exception ex) when (ex is DbException or InvalidOperationException)
        {
            _ = ex;
        }
    }

    private async ValueTask EndCheckAsync(DbEntityLoader on)
    {
        if (on != this)
        {
            await on.ReleaseAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">An application transaction is open on the connection.</exception>
    public ValueTask<IEntityWriteTransaction> BeginWriteAsync(CancellationToken cancellationToken) => BeginOwnWriteAsync(repaired: null, cancellationToken);

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">An application transaction is open on the connection.</exception>
    public ValueTask<IEntityWriteTransaction> BeginRepairAsync(IReadOnlyList<IVersionedSharedEntity> entities, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entities);
        return BeginOwnWriteAsync(entities.Count > 0 ? MappingOf(entities[0].GetType()) : null, cancellationToken);
    }

    // repaired: the mapping of the entity a repair is for (its begin is bounded by DatabaseWaitTimeout), or null for a commit.
    private ValueTask<IEntityWriteTransaction> BeginOwnWriteAsync(DbEntityMapping? repaired, CancellationToken cancellationToken)
    {
        if (Transaction is not null)
        {
            throw new InvalidOperationException(
                "A scope cannot commit inside an application transaction on the loader's connection: the loader must own the commit to publish the " +
                "new versions after it. Commit or roll back the application transaction first, or commit the scope on another connection.");
        }

        if (DataSource is not null && repaired is null && System.Transactions.Transaction.Current is not null)
        {
            throw new InvalidOperationException(
                "A scope cannot commit through a DbEntityLoader over a DbDataSource inside an ambient TransactionScope: the loader must own the commit " +
                "to publish the new versions after it, and its connection would enlist in the application's transaction. Complete the " +
                "TransactionScope first, or begin the scope outside it.");
        }

        if (Dialect is IStoreEnlistingDialect)
        {
            // Synchronously, so that the store enlistment flows back to the runtime, which raises the dirty tokens in it.
            cancellationToken.ThrowIfCancellationRequested();
            DbEntityLoader on = SyncComplete(WritesOnAsync(ownTransaction: true, async: false, CancellationToken.None));
            try
            {
                var write = (WriteTransaction)SyncComplete(on.BeginOnConnectionAsync(repaired, async: false, CancellationToken.None));
                write.Enlistment = EnlistStore(on.Connection, write.Transaction);
                return new ValueTask<IEntityWriteTransaction>(write);
            }
            catch
            {
                CloseAfterFailure(on);
                throw;
            }
        }

        return BeginWriteCoreAsync(repaired, cancellationToken);
    }

    private async ValueTask<IEntityWriteTransaction> BeginWriteCoreAsync(DbEntityMapping? repaired, CancellationToken cancellationToken)
    {
        DbEntityLoader on = await WritesOnAsync(ownTransaction: true, async: true, cancellationToken).ConfigureAwait(false);
        try
        {
            return await on.BeginOnConnectionAsync(repaired, async: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }
    }

    // On the loader whose connection runs the write (this one, or a lease); a lease is given back when the write ends.
    private async ValueTask<IEntityWriteTransaction> BeginOnConnectionAsync(DbEntityMapping? repaired, bool async, CancellationToken cancellationToken)
    {
        DbTransaction transaction;
        try
        {
            if (async)
            {
                await EnsureOpenAsync(cancellationToken).ConfigureAwait(false);
                transaction = repaired is null
                    ? await Connection.BeginTransactionAsync(Dialect.OwnTransactionIsolation, cancellationToken).ConfigureAwait(false)
                    : await Dialect.BeginTransactionAsync(Connection, Dialect.OwnTransactionIsolation, WaitTimeout, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                EnsureOpen();
                transaction = repaired is null
                    ? Connection.BeginTransaction(Dialect.OwnTransactionIsolation)
                    : Dialect.BeginTransaction(Connection, Dialect.OwnTransactionIsolation, WaitTimeout);
            }
        }
        catch (DbException ex) when (repaired is not null && Dialect.IsWaitTimeout(ex))
        {
            throw WaitTimedOut(repaired, DatabaseWait.VersionAdvance, ex);
        }

        return new WriteTransaction(this, transaction);
    }

    // A store that lives in the same database runs inside the transaction the loader holds (IStoreEnlistingDialect).
    private IDisposable? EnlistStore(DbConnection connection, DbTransaction transaction) =>
        (Dialect as IStoreEnlistingDialect)?.EnlistStore(connection, transaction);

    private static void SyncComplete(ValueTask task)
    {
        if (!task.IsCompleted)
        {
            throw new InvalidOperationException("A synchronous loader path did not complete synchronously.");
        }

        task.GetAwaiter().GetResult();
    }

    private static T SyncComplete<T>(ValueTask<T> task) =>
        task.IsCompleted ? task.GetAwaiter().GetResult() : throw new InvalidOperationException("A synchronous loader path did not complete synchronously.");

    // A find: the rows the entity cache can serve (one store round trip for all keys), the others in one query per
    // entity type; every instance is new, and counts as checked in the current scope.
    private async ValueTask<IReadOnlyList<T>> FindCoreAsync<T>(object[] keys, bool async, CancellationToken cancellationToken)
        where T : class, ISharedEntity
    {
        DbEntityMapping mapping = MappingOf(typeof(T));
        var entities = new ISharedEntity[keys.Length];
        for (int i = 0; i < keys.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(keys[i]);
            entities[i] = mapping.Create(keys[i]);
        }

        CachedEntity?[] served = async
            ? await Coherence.Cache.ServeAsync(entities, this, mapping.Shape, cancellationToken).ConfigureAwait(false)
            : Coherence.Cache.Serve(entities, this, mapping.Shape);
        var found = new bool[keys.Length];
        var loads = new List<int>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            if (served[i] is { } row)
            {
                CachedRows.Materialize(entities[i], row);
                found[i] = true;
            }
            else
            {
                loads.Add(i);
            }
        }

        if (loads.Count > 0)
        {
            ISharedEntity[] loaded = [.. loads.Select(i => entities[i])];
            bool[] exists = new bool[loaded.Length];
            DbEntityLoader on = await WritesOnAsync(ownTransaction: false, async, cancellationToken).ConfigureAwait(false);
            try
            {
                await on.ReloadCoreAsync(loaded, exists, async, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                CloseAfterFailure(on);
                throw;
            }

            if (async)
            {
                await EndCheckAsync(on).ConfigureAwait(false);
            }
            else
            {
                EndCheck(on);
            }

            Offer(loaded, exists);
            for (int j = 0; j < loads.Count; j++)
            {
                found[loads[j]] = exists[j];
            }
        }

        var result = new List<T>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            if (found[i])
            {
                result.Add(Coherence.AttachFresh((T)entities[i], this));
            }
        }

        return result;
    }

    // Rows just read outside every application transaction refill the entity cache (EntityCache.Offer): such a read
    // saw the newest committed row, so its version names its values.
    private void Offer(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        if (!OffersToCache || ReadsInTransaction || System.Transactions.Transaction.Current is not null)
        {
            return;
        }

        EntityCache cache = Coherence.Cache;
        for (int i = 0; i < entities.Count; i++)
        {
            ISharedEntity entity = entities[i];
            if (found[i] && cache.Caches(entity.SharedType) && CachedRows.Of(MappingOf(entity.GetType()), entity) is { } row)
            {
                cache.Offer(Coherence.StoreKeyOf(entity), entity.SharedType, row);
            }
        }
    }

    private async ValueTask ReloadCoreAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, bool async, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entities);
        ArgumentNullException.ThrowIfNull(found);
        Array.Fill(found, false);
        foreach (IGrouping<DbEntityMapping, int> group in Enumerable.Range(0, entities.Count).GroupBy(i => MappingOf(entities[i].GetType())))
        {
            DbEntityMapping mapping = group.Key;
            var columns = new List<string> { mapping.KeyColumn };
            if (mapping.VersionColumn is { } version)
            {
                columns.Add(version);
            }

            int first = columns.Count;
            columns.AddRange(mapping.Columns);
            await SelectByKeysAsync(mapping, columns, [.. group], entities, Transaction, locking: null, DatabaseWait.RowRead, async, (reader, index) =>
            {
                ISharedEntity entity = entities[index];
                for (int p = 0; p < mapping.Columns.Count; p++)
                {
                    entity.SetSharedValue(p, mapping.FromColumn(p, reader.GetValue(first + p)));
                }

                if (entity is IVersionedSharedEntity versioned)
                {
                    versioned.SharedVersion = Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture);
                }

                found[index] = true;
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask ReadVersionsCoreAsync(
        IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions, DbTransaction? transaction, bool? locking, bool async, CancellationToken cancellationToken)
    {
        // locking: null for a plain read; true for a locked read in the loader's own transaction; false in the application's.
        ArgumentNullException.ThrowIfNull(entities);
        ArgumentNullException.ThrowIfNull(versions);
        Array.Fill(versions, null);
        foreach (IGrouping<DbEntityMapping, int> group in Enumerable.Range(0, entities.Count).GroupBy(i => MappingOf(entities[i].GetType())))
        {
            DbEntityMapping mapping = group.Key;
            string versionColumn = mapping.VersionColumn
                ?? throw new InvalidOperationException($"{mapping.SharedType.Name} has no version column.");
            int[] indexes = [.. group];
            DatabaseWait wait = locking is null ? DatabaseWait.VersionRead : DatabaseWait.LockedVersionRead;
            if (locking is not null && transaction is not null && Dialect.WriteLockStatement(Dialect.Quote(mapping.Table), Dialect.Quote(versionColumn)) is { } writeLock)
            {
                DbCommand command = CreateCommand(transaction, bounded: true);
                try
                {
                    command.CommandText = Dialect.BoundLockWaits(writeLock, WaitTimeout, ownTransaction: locking.Value);
                    await ExecuteAsync(command, mapping, entities[indexes[0]], wait, async, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    await DisposeAsync(command, async).ConfigureAwait(false);
                }
            }

            await SelectByKeysAsync(
                mapping,
                [mapping.KeyColumn, versionColumn],
                indexes,
                entities,
                transaction,
                locking,
                wait,
                async,
                (reader, index) => versions[index] = Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture),
                cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<IVersionLock> LockVersionsCoreAsync(IReadOnlyList<IVersionedSharedEntity> entities, bool async, CancellationToken cancellationToken)
    {
        // Inside the application's transaction the lock lasts as long as that transaction; otherwise the loader holds
        // a short transaction of its own (BEGIN IMMEDIATE in SQLite, READ COMMITTED + FOR SHARE in PostgreSQL).
        DbTransaction? own = null;
        DbTransaction? transaction = Transaction;
        if (transaction is null)
        {
            try
            {
                if (async)
                {
                    await EnsureOpenAsync(cancellationToken).ConfigureAwait(false);
                    own = await Dialect.BeginTransactionAsync(Connection, Dialect.OwnTransactionIsolation, WaitTimeout, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    EnsureOpen();
                    own = Dialect.BeginTransaction(Connection, Dialect.OwnTransactionIsolation, WaitTimeout);
                }
            }
            catch (DbException ex) when (Dialect.IsWaitTimeout(ex) && entities.Count > 0)
            {
                throw WaitTimedOut(MappingOf(entities[0].GetType()), DatabaseWait.LockedVersionRead, ex);
            }

            transaction = own;
        }

        try
        {
            var versions = new long?[entities.Count];
            await ReadVersionsCoreAsync(entities, versions, transaction, locking: own is not null, async, cancellationToken).ConfigureAwait(false);
            return new VersionLock(own, transaction, versions);
        }
        catch
        {
            own?.Dispose();
            throw;
        }
    }

    private async ValueTask SelectByKeysAsync<TEntity>(
        DbEntityMapping mapping,
        List<string> columns,
        int[] indexes,
        IReadOnlyList<TEntity> entities,
        DbTransaction? transaction,
        bool? locking,
        DatabaseWait wait,
        bool async,
        Action<DbDataReader, int> onRow,
        CancellationToken cancellationToken)
        where TEntity : ISharedEntity
    {
        string select = $"SELECT {string.Join(", ", columns.Select(Dialect.Quote))} FROM {Dialect.Quote(mapping.Table)} WHERE {Dialect.Quote(mapping.KeyColumn)} IN (";
        int chunkSize = Math.Max(1, Dialect.MaxParametersPerStatement);
        for (int start = 0; start < indexes.Length; start += chunkSize)
        {
            int[] chunk = indexes[start..Math.Min(indexes.Length, start + chunkSize)];
            var byKey = new Dictionary<object, List<int>>();
            DbCommand command = CreateCommand(transaction, bounded: true);
            try
            {
                var sql = new StringBuilder(select);
                foreach (int index in chunk)
                {
                    object key = mapping.NormalizeKey(entities[index].SharedKey);
                    if (!byKey.TryGetValue(key, out List<int>? same))
                    {
                        byKey[key] = same = [];
                        sql.Append(byKey.Count == 1 ? "" : ", ").Append(AddParameter(command, key));
                    }

                    same.Add(index);
                }

                string statement = sql.Append(')').Append(locking is null ? "" : Dialect.LockingReadClause).ToString();
                command.CommandText = locking is { } own ? Dialect.BoundLockWaits(statement, WaitTimeout, own) : statement;
                DbDataReader reader = await ExecuteReaderAsync(command, mapping, entities[chunk[0]], wait, async, cancellationToken).ConfigureAwait(false);
                try
                {
                    while (async ? await ReadAsync(reader, mapping, entities[chunk[0]], wait, cancellationToken).ConfigureAwait(false) : Read(reader, mapping, entities[chunk[0]], wait))
                    {
                        if (byKey.TryGetValue(mapping.NormalizeKey(reader.GetValue(0)), out List<int>? targets))
                        {
                            foreach (int index in targets)
                            {
                                onRow(reader, index);
                            }
                        }
                    }
                }
                finally
                {
                    await DisposeAsync(reader, async).ConfigureAwait(false);
                }
            }
            finally
            {
                await DisposeAsync(command, async).ConfigureAwait(false);
            }
        }
    }

    // The synchronous paths dispose synchronously: a reader's DisposeAsync may still be reading the end of its
    // results from the network when it returns, and the synchronous caller would go on with the connection busy.
    private static async ValueTask DisposeAsync<T>(T disposable, bool async)
        where T : IAsyncDisposable, IDisposable
    {
        if (async)
        {
            await disposable.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            disposable.Dispose();
        }
    }

    // A bounded command serves a check (reads, locked reads, repairs): its waits end after DatabaseWaitTimeout.
    private DbCommand CreateCommand(DbTransaction? transaction, bool bounded = false)
    {
        DbCommand command = Connection.CreateCommand();
        command.Transaction = transaction;
        if (bounded)
        {
            command.CommandTimeout = Dialect.CommandTimeoutSeconds(WaitTimeout);
        }

        return command;
    }

    private TimeSpan WaitTimeout => Coherence.Options.DatabaseWaitTimeout;

    private void CountStatement() => Interlocked.Increment(ref _statements.Value);

    private string AddParameter(DbCommand command, object? value)
    {
        DbParameter parameter = command.CreateParameter();
        parameter.ParameterName = Dialect.ParameterName(command.Parameters.Count);
        parameter.Value = DbValues.ToParameter(value);
        command.Parameters.Add(parameter);
        return parameter.ParameterName;
    }

    private void EnsureOpen()
    {
        if (Connection.State != ConnectionState.Open)
        {
            Connection.Open();
        }
    }

    private async ValueTask EnsureOpenAsync(CancellationToken cancellationToken)
    {
        if (Connection.State != ConnectionState.Open)
        {
            await Connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // Every statement of a check goes through one of these, which turn the database's "snapshot too old" and "lock
    // wait timed out" into the runtime's exceptions.
    private async ValueTask<DbDataReader> ExecuteReaderAsync(
        DbCommand command, DbEntityMapping mapping, ISharedEntity sample, DatabaseWait wait, bool async, CancellationToken cancellationToken)
    {
        try
        {
            CountStatement();
            if (async)
            {
                await EnsureOpenAsync(cancellationToken).ConfigureAwait(false);
                return await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            }

            EnsureOpen();
            return command.ExecuteReader();
        }
        catch (DbException ex) when (Dialect.IsStaleSnapshot(ex))
        {
            throw StaleSnapshot(mapping, sample, ex);
        }
        catch (DbException ex) when (Dialect.IsWaitTimeout(ex))
        {
            throw WaitTimedOut(mapping, wait, ex);
        }
        catch (DbException ex) when (Dialect.IsUndefinedColumn(ex))
        {
            throw MissingColumn(mapping, ex);
        }
    }

    private async ValueTask ExecuteAsync(DbCommand command, DbEntityMapping mapping, ISharedEntity sample, DatabaseWait wait, bool async, CancellationToken cancellationToken)
    {
        try
        {
            CountStatement();
            if (async)
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                command.ExecuteNonQuery();
            }
        }
        catch (DbException ex) when (Dialect.IsStaleSnapshot(ex))
        {
            throw StaleSnapshot(mapping, sample, ex);
        }
        catch (DbException ex) when (Dialect.IsWaitTimeout(ex))
        {
            throw WaitTimedOut(mapping, wait, ex);
        }
        catch (DbException ex) when (Dialect.IsUndefinedColumn(ex))
        {
            throw MissingColumn(mapping, ex);
        }
    }

    private async ValueTask<bool> ReadAsync(DbDataReader reader, DbEntityMapping mapping, ISharedEntity sample, DatabaseWait wait, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex) when (Dialect.IsStaleSnapshot(ex))
        {
            throw StaleSnapshot(mapping, sample, ex);
        }
        catch (DbException ex) when (Dialect.IsWaitTimeout(ex))
        {
            throw WaitTimedOut(mapping, wait, ex);
        }
    }

    private bool Read(DbDataReader reader, DbEntityMapping mapping, ISharedEntity sample, DatabaseWait wait)
    {
        try
        {
            return reader.Read();
        }
        catch (DbException ex) when (Dialect.IsStaleSnapshot(ex))
        {
            throw StaleSnapshot(mapping, sample, ex);
        }
        catch (DbException ex) when (Dialect.IsWaitTimeout(ex))
        {
            throw WaitTimedOut(mapping, wait, ex);
        }
    }

    // The database refused the statement because the transaction's snapshot predates a newer commit; which version
    // is committed it does not say (-1).
    private static StaleSnapshotException StaleSnapshot(DbEntityMapping mapping, ISharedEntity sample, DbException cause)
    {
        _ = cause;
        return new(mapping.SharedType.Name, sample.SharedKey, -1, sample is IVersionedSharedEntity v ? v.SharedVersion : -1);
    }

    private static MissingColumnException MissingColumn(DbEntityMapping mapping, DbException cause) =>
        new(mapping.SharedType.Name, mapping.Table, [mapping.KeyColumn, .. mapping.VersionColumn is { } v ? [v] : Array.Empty<string>(), .. mapping.Columns],
            mapping.SharedType.VersionProperty, mapping.VersionColumn, cause);

    private DatabaseWaitTimeoutException WaitTimedOut(DbEntityMapping mapping, DatabaseWait wait, Exception cause) =>
        new(mapping.SharedType.Name, wait, WaitTimeout, cause);

    private sealed class VersionLock(DbTransaction? own, DbTransaction transaction, long?[] versions) : IVersionLock
    {
        public IReadOnlyList<long?> Versions => versions;

        /// <summary>The transaction holding the lock (the loader's own, or the application's).</summary>
        public DbTransaction Transaction => transaction;

        /// <summary>The store's enlistment in <see cref="Transaction"/>, for dialects whose store lives in the same database.</summary>
        public IDisposable? Enlistment { get; set; }

        /// <summary>The loader of the check connection or lease the lock was taken on, given back once the lock is released.</summary>
        public DbEntityLoader? ReleaseAfter { get; set; }

        public void Dispose()
        {
            try
            {
                Enlistment?.Dispose();
                if (own is { Connection: not null })
                {
                    own.Commit();
                }

                own?.Dispose();
            }
            finally
            {
                ReleaseAfter?.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                Enlistment?.Dispose();
                if (own is { Connection: not null })
                {
                    await own.CommitAsync().ConfigureAwait(false);
                }

                if (own is not null)
                {
                    await own.DisposeAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                if (ReleaseAfter is not null)
                {
                    await ReleaseAfter.ReleaseAsync().ConfigureAwait(false);
                }
            }
        }
    }

    // loader: the one whose connection runs the transaction (a data-source loader's lease, given back at the end).
    private sealed class WriteTransaction(DbEntityLoader loader, DbTransaction transaction) : IEntityWriteTransaction
    {
        public DbEntityLoader Loader => loader;

        public DbTransaction Transaction => transaction;

        /// <summary>The store's enlistment in <see cref="Transaction"/>, for dialects whose store lives in the same database.</summary>
        public IDisposable? Enlistment { get; set; }

        public async ValueTask<bool> UpdateAsync(ISharedEntity entity, long? expectedVersion, long? newVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            DbEntityMapping mapping = loader.MappingOf(entity.GetType());
            DbDialect d = loader.Dialect;
            await using DbCommand command = loader.CreateCommand(transaction);
            var sets = new List<string>();
            for (int i = 0; i < mapping.Columns.Count; i++)
            {
                sets.Add($"{d.Quote(mapping.Columns[i])} = {loader.AddParameter(command, mapping.ToColumn(i, entity.GetSharedValue(i)))}");
            }

            if (mapping.VersionColumn is { } version && newVersion is { } next)
            {
                sets.Add($"{d.Quote(version)} = {loader.AddParameter(command, next)}");
            }

            command.CommandText = $"UPDATE {d.Quote(mapping.Table)} SET {string.Join(", ", sets)} WHERE {Guard(command, mapping, entity, expectedVersion)}";
            return await ExecuteGuardedAsync(command, mapping, entity, cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask<bool> AdvanceVersionAsync(IVersionedSharedEntity entity, long expectedVersion, long newVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            DbEntityMapping mapping = loader.MappingOf(entity.GetType());
            string version = mapping.VersionColumn ?? throw new InvalidOperationException($"{mapping.SharedType.Name} has no version column.");
            await using DbCommand command = loader.CreateCommand(transaction, bounded: true);
            command.CommandText = loader.Dialect.BoundLockWaits(
                $"UPDATE {loader.Dialect.Quote(mapping.Table)} SET {loader.Dialect.Quote(version)} = {loader.AddParameter(command, newVersion)} " +
                $"WHERE {Guard(command, mapping, entity, expectedVersion)}",
                loader.WaitTimeout,
                ownTransaction: true);
            try
            {
                return await ExecuteGuardedAsync(command, mapping, entity, cancellationToken).ConfigureAwait(false);
            }
            catch (DbException ex) when (loader.Dialect.IsWaitTimeout(ex))
            {
                throw loader.WaitTimedOut(mapping, DatabaseWait.VersionAdvance, ex);
            }
        }

        public async ValueTask<bool> DeleteAsync(ISharedEntity entity, long? expectedVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            DbEntityMapping mapping = loader.MappingOf(entity.GetType());
            await using DbCommand command = loader.CreateCommand(transaction);
            command.CommandText = $"DELETE FROM {loader.Dialect.Quote(mapping.Table)} WHERE {Guard(command, mapping, entity, expectedVersion)}";
            return await ExecuteGuardedAsync(command, mapping, entity, cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask CommitAsync(CancellationToken cancellationToken)
        {
            loader.CountStatement();
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            Enlistment?.Dispose();
        }

        // Not an async method: the enlistment's end must flow back to the caller.
        public ValueTask DisposeAsync()
        {
            Enlistment?.Dispose();
            return loader._leased ? DisposeAndReleaseAsync() : transaction.DisposeAsync();
        }

        private async ValueTask DisposeAndReleaseAsync()
        {
            try
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                await loader.ReleaseAsync().ConfigureAwait(false);
            }
        }

        private string Guard(DbCommand command, DbEntityMapping mapping, ISharedEntity entity, long? expectedVersion)
        {
            DbDialect d = loader.Dialect;
            string guard = $"{d.Quote(mapping.KeyColumn)} = {loader.AddParameter(command, mapping.NormalizeKey(entity.SharedKey))}";
            if (expectedVersion is { } expected && mapping.VersionColumn is { } version)
            {
                guard += $" AND {d.Quote(version)} = {loader.AddParameter(command, expected)}";
            }

            return guard;
        }

        private async ValueTask<bool> ExecuteGuardedAsync(DbCommand command, DbEntityMapping mapping, ISharedEntity entity, CancellationToken cancellationToken)
        {
            try
            {
                loader.CountStatement();
                return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
            }
            catch (DbException ex) when (loader.Dialect.IsStaleSnapshot(ex))
            {
                // Our own transaction is READ COMMITTED / IMMEDIATE, so this means another process won the row.
                return false;
            }
        }
    }
}
