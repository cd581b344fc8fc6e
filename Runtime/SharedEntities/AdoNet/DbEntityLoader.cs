using System.Data;
using System.Data.Common;
using System.Text;
using SharedEntities.Loading;
using SharedEntities.Protocol;

namespace SharedEntities.AdoNet;

/// <summary>
/// An <see cref="IEntityLoader"/> over a plain <see cref="DbConnection"/> (ADO.NET; Dapper users pass their
/// connection): batched <c>WHERE key IN (…)</c> reads, version-guarded <c>UPDATE</c>/<c>DELETE</c>, locked version
/// reads for lease fills, and <see cref="StaleSnapshotException"/> where the database cannot see the newest commit.
/// See docs/adonet.md.
/// </summary>
/// <remarks>
/// <para>Like a <c>DbContext</c>, a loader and its connection serve one flow at a time. The loader opens the
/// connection if it is closed and never closes it.</para>
/// <para>When the application runs its own transaction on the connection, it tells the loader through
/// <see cref="Transaction"/> (or begins it with <see cref="BeginTransaction"/>): reads then run in it, so a reload
/// sees what that transaction sees — and the runtime refuses an old snapshot with
/// <see cref="StaleSnapshotException"/>. A scope cannot commit inside an application transaction (the loader must
/// own the commit to publish after it): <see cref="BeginWriteAsync"/> throws then.</para>
/// </remarks>
public sealed class DbEntityLoader : IEntityLoader
{
    private readonly Dictionary<Type, DbEntityMapping> _mappings = [];
    private DbTransaction? _transaction;
    private DbConnection? _checkConnection;
    private DbEntityLoader? _checks;
    private int _statements;

    /// <summary>Creates a loader.</summary>
    /// <param name="coherence">The runtime the entities found are attached to.</param>
    /// <param name="connection">The connection (opened on first use if closed).</param>
    /// <param name="dialect"><see cref="DbDialect.PostgreSql"/>, <c>SqliteDialect.Instance</c> (package <c>SharedEntities.Sqlite</c>), or one of your own.</param>
    /// <param name="mappings">One per entity class.</param>
    public DbEntityLoader(Coherence coherence, DbConnection connection, DbDialect dialect, params IEnumerable<DbEntityMapping> mappings)
    {
        ArgumentNullException.ThrowIfNull(coherence);
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(dialect);
        ArgumentNullException.ThrowIfNull(mappings);
        Coherence = coherence;
        Connection = connection;
        Dialect = dialect;
        foreach (DbEntityMapping mapping in mappings)
        {
            _mappings.Add(mapping.EntityType, mapping);
        }
    }

    /// <summary>The runtime.</summary>
    public Coherence Coherence { get; }

    /// <summary>The connection.</summary>
    public DbConnection Connection { get; }

    /// <summary>The dialect.</summary>
    public DbDialect Dialect { get; }

    /// <summary>The number of statements executed (a batched read counts once), on <see cref="CheckConnection"/> too.</summary>
    internal int Statements => _statements + (_checks?.Statements ?? 0);

    /// <summary>
    /// A second, closed connection to the same database, on which the runtime's checks run while no application
    /// transaction is open — version reads, the lease winner's locked read, reloads of stale entities — opened for each
    /// check and closed (given back to the pool) after it. Set it when the application touches shared entities while
    /// it holds a data reader open on <see cref="Connection"/>: a check on that connection would fail (Npgsql:
    /// "Connection is busy"), or, on SQLite, run in the reader's snapshot. Inside an application transaction the
    /// checks stay on <see cref="Connection"/>, in the transaction's snapshot. Finds, inserts, commits and repairs
    /// always run on <see cref="Connection"/>. The loader neither disposes it nor uses it concurrently. Default:
    /// <see langword="null"/> (every statement on <see cref="Connection"/>).
    /// </summary>
    public DbConnection? CheckConnection
    {
        get => _checkConnection;
        set
        {
            _checkConnection = value;
            _checks = value is null ? null : new DbEntityLoader(Coherence, value, Dialect, _mappings.Values);
        }
    }

    /// <summary>The application's transaction on <see cref="Connection"/>, if any; finished transactions are ignored.</summary>
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

        set => _transaction = value;
    }

    /// <inheritdoc/>
    public bool ReadsInTransaction => Transaction is not null;

    /// <summary>Begins an application transaction on the connection and uses it for the loader's reads.</summary>
    public DbTransaction BeginTransaction(IsolationLevel isolationLevel)
    {
        EnsureOpen();
        DbTransaction transaction = Connection.BeginTransaction(isolationLevel);
        Transaction = transaction;
        return transaction;
    }

    /// <summary>The mapping of <paramref name="entityType"/>.</summary>
    public DbEntityMapping MappingOf(Type entityType)
    {
        ArgumentNullException.ThrowIfNull(entityType);
        return _mappings.TryGetValue(entityType, out DbEntityMapping? mapping)
            ? mapping
            : throw new InvalidOperationException($"{entityType} is not mapped in this DbEntityLoader.");
    }

    /// <summary>
    /// Loads the row with key <paramref name="key"/> into a new <typeparamref name="T"/> attached to the runtime (and
    /// tracked by the current scope), or <see langword="null"/> if there is none.
    /// </summary>
    public T? Find<T>(object key)
        where T : class, ISharedEntity => SyncComplete(FindCoreAsync<T>([key], async: false, CancellationToken.None)) is [var found] ? found : null;

    /// <inheritdoc cref="Find"/>
    public async Task<T?> FindAsync<T>(object key, CancellationToken cancellationToken = default)
        where T : class, ISharedEntity => await FindCoreAsync<T>([key], async: true, cancellationToken).ConfigureAwait(false) is [var found] ? found : null;

    /// <summary>Loads the rows with the given keys in one query (per chunk of keys); rows that do not exist are left out.</summary>
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
            await InsertRowAsync(entity, mapping, ((WriteTransaction)transaction).Transaction, cancellationToken).ConfigureAwait(false);
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
            AddParameter(command, entity.GetSharedValue(i));
        }

        command.CommandText =
            $"INSERT INTO {Dialect.Quote(mapping.Table)} ({string.Join(", ", columns.Select(Dialect.Quote))}) " +
            $"VALUES ({string.Join(", ", Enumerable.Range(0, columns.Count).Select(Dialect.ParameterName))})";
        _statements++;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Reload(IReadOnlyList<ISharedEntity> entities, bool[] found)
    {
        DbEntityLoader on = ChecksOn();
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
    }

    /// <inheritdoc/>
    public async ValueTask ReloadAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, CancellationToken cancellationToken)
    {
        DbEntityLoader on = ChecksOn();
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
    }

    /// <inheritdoc/>
    public void ReadVersions(IReadOnlyList<IVersionedSharedEntity> entities, long?[] versions)
    {
        DbEntityLoader on = ChecksOn();
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
        DbEntityLoader on = ChecksOn();
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
        DbEntityLoader on = ChecksOn();
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
        versionLock.CloseAfter = on == this ? null : on.Connection;
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
        DbEntityLoader on = ChecksOn();
        try
        {
            var versionLock = (VersionLock)await on.LockVersionsCoreAsync(entities, async: true, cancellationToken).ConfigureAwait(false);
            versionLock.CloseAfter = on == this ? null : on.Connection;
            return versionLock;
        }
        catch
        {
            CloseAfterFailure(on);
            throw;
        }
    }

    // Where a check's statements run: on the check connection while no application transaction is open, else here,
    // in the transaction (whose snapshot the stale-snapshot detection depends on). An ambient System.Transactions
    // transaction counts: a second connection would enlist in it as a transaction of its own.
    private DbEntityLoader ChecksOn() =>
        _checks is { } checks && Transaction is null && System.Transactions.Transaction.Current is null ? checks : this;

    private void EndCheck(DbEntityLoader on)
    {
        if (on != this)
        {
            on.Connection.Close();
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
            await on.Connection.CloseAsync().ConfigureAwait(false);
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

        if (Dialect is IStoreEnlistingDialect)
        {
            // Synchronously, so that the store enlistment flows back to the runtime, which raises the dirty tokens in it.
            cancellationToken.ThrowIfCancellationRequested();
            EnsureOpen();
            DbTransaction transaction;
            try
            {
                transaction = repaired is null
                    ? Connection.BeginTransaction(Dialect.OwnTransactionIsolation)
                    : Dialect.BeginTransaction(Connection, Dialect.OwnTransactionIsolation, WaitTimeout);
            }
            catch (DbException ex) when (repaired is not null && Dialect.IsWaitTimeout(ex))
            {
                throw WaitTimedOut(repaired, DatabaseWait.VersionAdvance, ex);
            }

            return new ValueTask<IEntityWriteTransaction>(new WriteTransaction(this, transaction, EnlistStore(Connection, transaction)));
        }

        return BeginWriteCoreAsync(repaired, cancellationToken);
    }

    private async ValueTask<IEntityWriteTransaction> BeginWriteCoreAsync(DbEntityMapping? repaired, CancellationToken cancellationToken)
    {
        await EnsureOpenAsync(cancellationToken).ConfigureAwait(false);
        DbTransaction transaction;
        try
        {
            transaction = repaired is null
                ? await Connection.BeginTransactionAsync(Dialect.OwnTransactionIsolation, cancellationToken).ConfigureAwait(false)
                : await Dialect.BeginTransactionAsync(Connection, Dialect.OwnTransactionIsolation, WaitTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException ex) when (repaired is not null && Dialect.IsWaitTimeout(ex))
        {
            throw WaitTimedOut(repaired, DatabaseWait.VersionAdvance, ex);
        }

        return new WriteTransaction(this, transaction, enlistment: null);
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

        var found = new bool[keys.Length];
        await ReloadCoreAsync(entities, found, async, cancellationToken).ConfigureAwait(false);
        var result = new List<T>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            if (found[i])
            {
                result.Add(Coherence.Attach((T)entities[i], this));
            }
        }

        return result;
    }

    private async ValueTask ReloadCoreAsync(IReadOnlyList<ISharedEntity> entities, bool[] found, bool async, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entities);
        ArgumentNullException.ThrowIfNull(found);
        Array.Fill(found, false);
        foreach (IGrouping<Type, int> group in Enumerable.Range(0, entities.Count).GroupBy(i => entities[i].GetType()))
        {
            DbEntityMapping mapping = MappingOf(group.Key);
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
                    entity.SetSharedValue(p, DbValues.To(reader.GetValue(first + p), mapping.SharedType.Properties[p].PropertyType));
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
        foreach (IGrouping<Type, int> group in Enumerable.Range(0, entities.Count).GroupBy(i => entities[i].GetType()))
        {
            DbEntityMapping mapping = MappingOf(group.Key);
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
            _statements++;
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
    }

    private async ValueTask ExecuteAsync(DbCommand command, DbEntityMapping mapping, ISharedEntity sample, DatabaseWait wait, bool async, CancellationToken cancellationToken)
    {
        try
        {
            _statements++;
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

    private DatabaseWaitTimeoutException WaitTimedOut(DbEntityMapping mapping, DatabaseWait wait, Exception cause) =>
        new(mapping.SharedType.Name, wait, WaitTimeout, cause);

    private sealed class VersionLock(DbTransaction? own, DbTransaction transaction, long?[] versions) : IVersionLock
    {
        public IReadOnlyList<long?> Versions => versions;

        /// <summary>The transaction holding the lock (the loader's own, or the application's).</summary>
        public DbTransaction Transaction => transaction;

        /// <summary>The store's enlistment in <see cref="Transaction"/>, for dialects whose store lives in the same database.</summary>
        public IDisposable? Enlistment { get; set; }

        /// <summary>The check connection the lock was taken on, closed once the lock is released.</summary>
        public DbConnection? CloseAfter { get; set; }

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
                CloseAfter?.Close();
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
                if (CloseAfter is not null)
                {
                    await CloseAfter.CloseAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private sealed class WriteTransaction(DbEntityLoader loader, DbTransaction transaction, IDisposable? enlistment) : IEntityWriteTransaction
    {
        public DbTransaction Transaction => transaction;

        public async ValueTask<bool> UpdateAsync(ISharedEntity entity, long? expectedVersion, long? newVersion, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(entity);
            DbEntityMapping mapping = loader.MappingOf(entity.GetType());
            DbDialect d = loader.Dialect;
            await using DbCommand command = loader.CreateCommand(transaction);
            var sets = new List<string>();
            for (int i = 0; i < mapping.Columns.Count; i++)
            {
                sets.Add($"{d.Quote(mapping.Columns[i])} = {loader.AddParameter(command, entity.GetSharedValue(i))}");
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
            loader._statements++;
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            enlistment?.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            enlistment?.Dispose();
            return transaction.DisposeAsync();
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
                loader._statements++;
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
