using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// Reads of shared entities by key, served from the process-wide entity cache when the store vouches for the cached
/// row (docs/efcore.md, "Reads by key: the entity cache").
/// </summary>
public static class SharedEntitiesDbSetExtensions
{
    /// <summary>
    /// The entity with the key <paramref name="key"/>, or <see langword="null"/> if no row has it. The instance the
    /// context tracks, if any, as it is; else, outside every transaction, a new instance made from the process's
    /// cached row when the store vouches for its version (one store round trip, no database statement); else the row
    /// loaded by an ordinary tracked query, which refills the cache. A served instance is tracked as
    /// <see cref="EntityState.Unchanged"/> and attached to the runtime as checked in the current scope, so
    /// <c>SaveChanges</c> writes it guarded by its version as usual. Navigations are not loaded (use a query with
    /// <c>Include</c>). Inside a transaction of the context (or an ambient <c>TransactionScope</c>) nothing is served:
    /// the row is queried and checked as the protocol's rules for transactions say.
    /// </summary>
    /// <typeparam name="T">A <c>[SharedEntity]</c> class of the context's model.</typeparam>
    /// <typeparam name="TKey">The type of its key property, which must be its primary key.</typeparam>
    /// <param name="set">The context's set.</param>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the store and database waits.</param>
    /// <exception cref="InvalidOperationException">The context was not set up with <c>UseSharedEntities</c>, or its model has an entity type that the cache keeps but cannot serve.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="TKey"/> is not the type of the key property.</exception>
    public static async ValueTask<T?> FindSharedAsync<T, TKey>(this DbSet<T> set, TKey key, CancellationToken cancellationToken = default)
        where T : class, ISharedEntity
        where TKey : notnull
    {
        T?[] found = await ReadsOf(set).FindAsync(set, [key], async: true, cancellationToken).ConfigureAwait(false);
        return found[0];
    }

    /// <inheritdoc cref="FindSharedAsync{T, TKey}(DbSet{T}, TKey, CancellationToken)"/>
    public static T? FindShared<T, TKey>(this DbSet<T> set, TKey key)
        where T : class, ISharedEntity
        where TKey : notnull =>
        Completed(ReadsOf(set).FindAsync(set, [key], async: false, CancellationToken.None))[0];

    /// <summary>
    /// The entities with the keys <paramref name="keys"/>, in their order; a key with no row is left out (a key given
    /// twice comes twice, as the same instance). As <see cref="FindSharedAsync{T, TKey}(DbSet{T}, TKey, CancellationToken)"/>
    /// for each key, with one store round trip for every key the context does not track and one query for every key
    /// the cache could not serve.
    /// </summary>
    /// <typeparam name="T">A <c>[SharedEntity]</c> class of the context's model.</typeparam>
    /// <typeparam name="TKey">The type of its key property, which must be its primary key.</typeparam>
    /// <param name="set">The context's set.</param>
    /// <param name="keys">The keys.</param>
    /// <param name="cancellationToken">Cancels the store and database waits.</param>
    /// <exception cref="InvalidOperationException">The context was not set up with <c>UseSharedEntities</c>, or its model has an entity type that the cache keeps but cannot serve.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="TKey"/> is not the type of the key property, or a key is null.</exception>
    public static async Task<IReadOnlyList<T>> FindManySharedAsync<T, TKey>(this DbSet<T> set, IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
        where T : class, ISharedEntity
        where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(keys);
        T?[] found = await ReadsOf(set).FindAsync(set, [.. keys], async: true, cancellationToken).ConfigureAwait(false);
        return Present(found);
    }

    /// <inheritdoc cref="FindManySharedAsync{T, TKey}(DbSet{T}, IEnumerable{TKey}, CancellationToken)"/>
    public static IReadOnlyList<T> FindManyShared<T, TKey>(this DbSet<T> set, IEnumerable<TKey> keys)
        where T : class, ISharedEntity
        where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(keys);
        return Present(Completed(ReadsOf(set).FindAsync(set, [.. keys], async: false, CancellationToken.None)));
    }

    private static ContextReads ReadsOf<T>(DbSet<T> set)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(set);
        return ContextReads.Of(set.GetService<ICurrentDbContext>().Context);
    }

    private static T?[] Completed<T>(ValueTask<T?[]> read) =>
        read.IsCompleted ? read.GetAwaiter().GetResult() : throw new InvalidOperationException("A synchronous read by key did not complete synchronously.");

    private static List<T> Present<T>(T?[] found)
        where T : class
    {
        var present = new List<T>(found.Length);
        foreach (T? entity in found)
        {
            if (entity is not null)
            {
                present.Add(entity);
            }
        }

        return present;
    }
}
