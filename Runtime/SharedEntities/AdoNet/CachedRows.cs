using System.Collections.Concurrent;
using System.Collections.Immutable;
using SharedEntities.Caching;

namespace SharedEntities.AdoNet;

/// <summary>
/// The entity cache's rows as <see cref="DbEntityLoader"/> writes and reads them: the version and the shared values in
/// the order of the mapping's columns, under the mapping's <see cref="DbEntityMapping.Shape"/>.
/// </summary>
internal static class CachedRows
{
    /// <summary>
    /// The row of a versioned entity whose values were just read, or <see langword="null"/> when it cannot be cached:
    /// a serial-only entity, or a value the cache cannot copy (a mutable object other than an array of plain values).
    /// </summary>
    public static CachedEntity? Of(DbEntityMapping mapping, ISharedEntity entity)
    {
        if (entity is not IVersionedSharedEntity versioned)
        {
            return null;
        }

        ImmutableArray<object?>.Builder values = ImmutableArray.CreateBuilder<object?>(mapping.Columns.Count);
        for (int p = 0; p < mapping.Columns.Count; p++)
        {
            if (!TryCopy(entity.GetSharedValue(p), out object? copy))
            {
                return null;
            }

            values.Add(copy);
        }

        return new CachedEntity(mapping.Shape, versioned.SharedVersion, values.MoveToImmutable());
    }

    /// <summary>Writes a cached row into a new, unattached instance: copies of its values, and its version.</summary>
    public static void Materialize(ISharedEntity entity, CachedEntity row)
    {
        for (int p = 0; p < row.Values.Length; p++)
        {
            TryCopy(row.Values[p], out object? copy);
            entity.SetSharedValue(p, copy);
        }

        ((IVersionedSharedEntity)entity).SharedVersion = row.Version;
    }

    // No cached value is shared with an entity that could change it in place: immutable values (strings, boxed value
    // types) as they are, arrays of them (byte[] above all) as copies; anything else is not cached.
    private static bool TryCopy(object? value, out object? copy)
    {
        switch (value)
        {
            case null or string:
                copy = value;
                return true;
            case Array array when array.GetType().GetElementType() is { } element && (element.IsValueType || element == typeof(string)):
                copy = array.Clone();
                return true;
            case not null when value.GetType().IsValueType:
                copy = value;
                return true;
            default:
                copy = null;
                return false;
        }
    }
}

/// <summary>
/// What a <see cref="DbEntityMapping"/>'s cached rows mean: the entity class, the table and the columns. Interned, so
/// that every mapping with the same signature — loaders built per request — has the same object for the whole
/// process, and their rows serve each other.
/// </summary>
internal sealed record DbRowShape(Type EntityType, string Table, string KeyColumn, string? VersionColumn, string Columns)
{
    private static readonly ConcurrentDictionary<DbRowShape, DbRowShape> Interned = new();

    /// <summary>The process's one shape of this signature.</summary>
    public static DbRowShape Of(Type entityType, string table, string keyColumn, string? versionColumn, IReadOnlyList<string> columns)
    {
        // A control character cannot be part of a column name (DbEntityMapping refuses it): a separator no name holds.
        var shape = new DbRowShape(entityType, table, keyColumn, versionColumn, string.Join('\0', columns));
        return Interned.GetOrAdd(shape, shape);
    }
}
