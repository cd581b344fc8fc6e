using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharedEntities.Caching;
using SharedEntities.Internals;
using SharedEntities.Loading;
using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities;

/// <summary>
/// The runtime of one process (register it as a singleton): the store, the options, logging and metrics. Entities are
/// attached to it by their loader, and code reads them inside the scopes it begins.
/// </summary>
/// <example>
/// <code>
/// var coherence = new Coherence(new InMemorySharedStore());
/// await using var scope = coherence.BeginScope();
/// Sheet sheet = connection.Find&lt;Sheet&gt;(id)!;   // attached and tracked by the scope
/// sheet.Title = "Q3";                                  // checked once on first touch, then local
/// await scope.CommitAsync();                           // version-guarded write, then publish
/// </code>
/// </example>
public sealed class Coherence : IDisposable
{
    private readonly bool _ownsMetrics;
    private readonly byte[]? _keyHashSecret;

    /// <summary>Creates the runtime.</summary>
    /// <param name="store">Where tokens live.</param>
    /// <param name="options">Settings; validated here.</param>
    /// <param name="loggerFactory">For warnings (store unavailable) and debug traces.</param>
    /// <param name="metrics">Counters, e.g. from DI; by default a meter of this instance's own, disposed with it.</param>
    public Coherence(ISharedStore store, CoherenceOptions? options = null, ILoggerFactory? loggerFactory = null, SharedEntitiesMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        options ??= new CoherenceOptions();
        options.Validate();
        options = options.FrozenCopy();
        Store = store;
        Options = options;
        _keyHashSecret = options.KeyHashSecret is { } secret ? Encoding.UTF8.GetBytes(secret) : null;
        Logger = (ILogger?)loggerFactory?.CreateLogger<Coherence>() ?? NullLogger.Instance;
        _ownsMetrics = metrics is null;
        Metrics = metrics ?? new SharedEntitiesMetrics();
        Publisher = new BackgroundPublisher(this);
        Cache = new EntityCache(this, options.EntityCache);
        Metrics.Observe(Cache);
    }

    /// <summary>The store.</summary>
    public ISharedStore Store { get; }

    /// <summary>The settings: a copy made when this runtime was built, which cannot change.</summary>
    public CoherenceOptions Options { get; }

    /// <summary>The counters.</summary>
    public SharedEntitiesMetrics Metrics { get; }

    /// <summary>The process-wide entity cache: the last committed row this process read of each entity (docs/entity-cache.md).</summary>
    public EntityCache Cache { get; }

    internal ILogger Logger { get; }

    /// <summary>Publishes sent after commits, and commits whose dirty tokens this process still raises.</summary>
    internal BackgroundPublisher Publisher { get; }

    /// <summary>
    /// Begins a fresh scope in the current flow. Use it with <c>using</c> or <c>await using</c>; entities loaded or
    /// touched inside are checked once, in one batch, on first touch.
    /// </summary>
    public FreshScope BeginScope() => new(this);

    /// <summary>
    /// Runs <paramref name="body"/> in a new scope and commits it. When another process commits one of its entities
    /// first (<see cref="StaleEntityException"/>), runs it again in a new scope, which reloads them, up to
    /// <paramref name="maxAttempts"/> times in all.
    /// </summary>
    public async Task RunInScopeAsync(Func<FreshScope, CancellationToken, Task> body, int maxAttempts = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        await RunInScopeAsync(
            async (scope, ct) =>
            {
                await body(scope, ct).ConfigureAwait(false);
                return true;
            },
            maxAttempts,
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc cref="RunInScopeAsync(Func{FreshScope, CancellationToken, Task}, int, CancellationToken)"/>
    public async Task<T> RunInScopeAsync<T>(Func<FreshScope, CancellationToken, Task<T>> body, int maxAttempts = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        for (int attempt = 1; ; attempt++)
        {
            await using FreshScope scope = BeginScope();
            try
            {
                T result = await body(scope, cancellationToken).ConfigureAwait(false);
                await scope.CommitAsync(cancellationToken).ConfigureAwait(false);
                return result;
            }
            catch (StaleEntityException) when (attempt < maxAttempts)
            {
                // The scope's disposal marks the entities to reload; the next attempt sees the other process's commit.
            }
        }
    }

    /// <summary>
    /// Attaches a loaded entity to this runtime (loaders call this; EF Core's integration does on materialization).
    /// If a scope of this runtime is current, the scope tracks the entity: it is checked with the scope's next batch.
    /// Attaching again only updates the loader.
    /// </summary>
    /// <exception cref="InvalidOperationException">The entity is attached to another <see cref="Coherence"/>.</exception>
    public T Attach<T>(T entity, IEntityLoader loader)
        where T : class, ISharedEntity
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(loader);
        SharedEntityState? state = entity.SharedState;
        if (state is null)
        {
            state = new SharedEntityState(this, entity, loader, StoreKeyOf(entity));
            entity.SharedState = state;
        }
        else if (!ReferenceEquals(state.Coherence, this))
        {
            throw new InvalidOperationException($"{entity.SharedType.Name} {entity.SharedKey} is already attached to another Coherence.");
        }
        else
        {
            state.Loader = loader;
        }

        FreshScope.FindCurrent(this)?.Track(state);
        return entity;
    }

    /// <summary>
    /// Attaches an entity whose values were just read from its row, <b>outside every application transaction</b>, by a
    /// statement that began in the current scope (a query materialized it, a loader found it): that read saw every
    /// commit that finished before it, so in the current scope the entity counts as checked, and no store round trip
    /// is spent on it. Inside a transaction (the loader's <see cref="IEntityLoader.ReadsInTransaction"/>, or an ambient
    /// <c>TransactionScope</c>) or for an instance attached before, this is <see cref="Attach{T}"/>: the entity is
    /// checked on first touch as usual. A row whose last write found the store ahead of the database is checked too
    /// (the check repairs it).
    /// </summary>
    /// <exception cref="InvalidOperationException">The entity is attached to another <see cref="Coherence"/>.</exception>
    public T AttachFresh<T>(T entity, IEntityLoader loader)
        where T : class, ISharedEntity
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(loader);
        bool read = entity.SharedState is null;
        Attach(entity, loader);
        SharedEntityState state = entity.SharedState!;
        if (read && !loader.ReadsInTransaction && System.Transactions.Transaction.Current is null &&
            state.TrackedBy is { } scope && ReferenceEquals(scope, FreshScope.FindCurrent(this)) && !Cache.MustCheck(state.StoreKey))
        {
            state.FreshIn = scope.Id;
        }

        return entity;
    }

    /// <summary>Detaches an entity: its properties become plain properties again.</summary>
    public void Detach(ISharedEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        if (entity.SharedState is { } state && ReferenceEquals(state.Coherence, this))
        {
            state.FreshIn = FreshScope.NoScope;
            entity.SharedState = null;
        }
    }

    /// <summary>
    /// The store key of an entity: <c>{KeyPrefix}{entity name}:{key}</c>, hashed when it is long or unusual, or always
    /// with <see cref="CoherenceOptions.HashKeys"/>.
    /// </summary>
    public string StoreKeyOf(ISharedEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return entity.SharedState is { } state && ReferenceEquals(state.Coherence, this)
            ? state.StoreKey
            : StoreKeys.For(Options.KeyPrefix, entity.SharedType.Name, entity.SharedKey, Options.HashKeys, _keyHashSecret);
    }

    /// <summary>A store key as log messages show it: itself with <see cref="CoherenceOptions.LogKeys"/>, its reference otherwise.</summary>
    internal string KeyForLog(string storeKey) => Options.LogKeys ? storeKey : StoreKeys.Reference(storeKey);

    /// <summary>
    /// Gives publishes under way a moment (at most a second) to land, stops raising the tokens of commits made while the
    /// store was unavailable (they expire in the store), and disposes the metrics this instance created (not metrics it
    /// was given).
    /// </summary>
    public void Dispose()
    {
        Publisher.Dispose();
        Metrics.Unobserve(Cache);
        if (_ownsMetrics)
        {
            Metrics.Dispose();
        }
    }

    /// <summary>
    /// Completes when the publishes of this process's commits so far have been answered by the store. With
    /// <see cref="CoherenceOptions.PublishInBackground"/> a commit returns before its publish lands (other processes ask
    /// the database for that entity meanwhile); tests and shutdown code that want the clean tokens in place await this.
    /// </summary>
    public Task PublishedAsync(CancellationToken cancellationToken = default) => Publisher.PublishedAsync(cancellationToken);

    /// <summary>A read outside every scope with <see cref="OutsideScopeReads.CheckEveryRead"/>: one check, nothing remembered.</summary>
    internal void CheckOutsideScope(SharedEntityState state)
    {
        SyncPath.Complete(FreshnessCheck.RunAsync(this, [state], scope: null, async: false, CancellationToken.None));
        if (state.Failure is { } failure)
        {
            state.Failure = null;
            throw failure;
        }
    }

    internal async ValueTask ExecuteAsync(StoreBatch batch, bool async, CancellationToken cancellationToken)
    {
        if (async)
        {
            await Store.ExecuteAsync(batch, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            Store.Execute(batch);
        }

        Metrics.StoreBatches.Add(1);
        int failed = 0;
        StoreResult firstFailure = default;
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch[i].IsFailure && failed++ == 0)
            {
                firstFailure = batch[i];
            }
        }

        if (failed > 0)
        {
            Metrics.StoreErrors.Add(failed);
            Log.StoreOperationsFailed(Logger, failed, firstFailure.Status, firstFailure.Error);
        }
    }
}
