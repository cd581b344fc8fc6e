using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;

namespace SharedEntities.AdoNet;

/// <summary>
/// How a <c>[SharedEntity]</c> class maps to a table: the table, the key column, the version column (versioned
/// entities) and one column per shared property. By default the columns are named like the properties.
/// </summary>
public sealed class DbEntityMapping
{
    private readonly Func<ISharedEntity> _create;
    private readonly PropertyInfo _keyProperty;

    private DbEntityMapping(Func<ISharedEntity> create, SharedEntityType sharedType, PropertyInfo keyProperty, string table, string keyColumn, string? versionColumn, string[] columns)
    {
        _create = create;
        SharedType = sharedType;
        _keyProperty = keyProperty;
        Table = table;
        KeyColumn = keyColumn;
        VersionColumn = versionColumn;
        Columns = columns;
        Shape = DbRowShape.Of(sharedType.ClrType, table, keyColumn, versionColumn, columns);
    }

    /// <summary>The entity's generated descriptor.</summary>
    public SharedEntityType SharedType { get; }

    /// <summary>The entity class.</summary>
    public Type EntityType => SharedType.ClrType;

    /// <summary>The table.</summary>
    public string Table { get; }

    /// <summary>The key column.</summary>
    public string KeyColumn { get; }

    /// <summary>The version column; <see langword="null"/> for a serial-only entity.</summary>
    public string? VersionColumn { get; }

    /// <summary>The column of each shared property, in the order of <see cref="SharedEntityType.Properties"/>.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>Whether the version property is narrower than <see cref="long"/> (an <see cref="int"/> column).</summary>
    internal bool NarrowVersion { get; private init; }

    /// <summary>
    /// The <see cref="Caching.CachedEntity.Shape"/> of this mapping's rows in the entity cache: one object per entity
    /// class, table and columns for the whole process, whichever mapping instance asks.
    /// </summary>
    internal object Shape { get; }

    /// <summary>The type of the key property.</summary>
    public Type KeyType => _keyProperty.PropertyType;

    /// <summary>Maps <typeparamref name="T"/>.</summary>
    /// <param name="table">The table; default: the class name.</param>
    /// <param name="keyColumn">The key column; default: the key property's name.</param>
    /// <param name="versionColumn">The version column; default: the version property's name.</param>
    /// <param name="columns">Column names by shared property name, for those that differ from the property name.</param>
    /// <exception cref="ArgumentException">A table or column name is empty or holds a control character (shown escaped, <c>\u0000</c>).</exception>
    public static DbEntityMapping For<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] T>(
        string? table = null, string? keyColumn = null, string? versionColumn = null, IReadOnlyDictionary<string, string>? columns = null)
        where T : class, ISharedEntity, new()
    {
        SharedEntityType type = new T().SharedType;
        PropertyInfo key = typeof(T).GetProperty(type.KeyProperty)
            ?? throw new InvalidOperationException($"{typeof(T)} has no public key property {type.KeyProperty}.");
        if (key.SetMethod is null)
        {
            throw new InvalidOperationException($"The key property {typeof(T)}.{type.KeyProperty} needs a setter for the loader to create instances.");
        }

        string[] names = [.. type.Properties.Select(p => Identifier(columns is not null && columns.TryGetValue(p.Name, out string? c) ? c : p.Name, "column", nameof(columns)))];
        Type? versionType = type.VersionProperty is { } v ? typeof(T).GetProperty(v)?.PropertyType : null;
        return new DbEntityMapping(
            static () => new T(),
            type,
            key,
            Identifier(table ?? typeof(T).Name, "table", nameof(table)),
            Identifier(keyColumn ?? type.KeyProperty, "key column", nameof(keyColumn)),
            type.VersionProperty is null ? null : Identifier(versionColumn ?? type.VersionProperty, "version column", nameof(versionColumn)),
            names)
        {
            NarrowVersion = versionType is not null && (Nullable.GetUnderlyingType(versionType) ?? versionType) != typeof(long),
        };
    }

    // A control character (a NUL above all) has no place in an identifier: Npgsql fails the whole statement with a
    // protocol error, far from the mapping that caused it. Refused here, with the name shown escaped.
    private static string Identifier(string name, string what, string parameter)
    {
        ArgumentException.ThrowIfNullOrEmpty(name, parameter);
        if (name.Any(char.IsControl))
        {
            string shown = string.Concat(name.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString(CultureInfo.InvariantCulture)));
            throw new ArgumentException($"The {what} name \"{shown}\" contains a control character, which no database identifier may hold.", parameter);
        }

        return name;
    }

    /// <summary>A new, unattached instance with key <paramref name="key"/>.</summary>
    internal ISharedEntity Create(object key)
    {
        ISharedEntity entity = _create();
        _keyProperty.SetValue(entity, NormalizeKey(key));
        return entity;
    }

    /// <summary>The key as the key property's type (database drivers return e.g. <see cref="long"/> for an <see cref="int"/> key).</summary>
    internal object NormalizeKey(object key) => DbValues.To(key, KeyType) ?? throw new InvalidOperationException($"{SharedType.Name}: a null key.");
}

/// <summary>Converts between database values and property values.</summary>
internal static class DbValues
{
    public static object ToParameter(object? value) => value ?? DBNull.Value;

    public static object? To(object? value, Type target)
    {
        if (value is null || value is DBNull)
        {
            return null;
        }

        Type type = Nullable.GetUnderlyingType(target) ?? target;
        if (type.IsInstanceOfType(value))
        {
            return value;
        }

        if (type.IsEnum)
        {
            return value is string name
                ? Enum.Parse(type, name)
                : Enum.ToObject(type, Convert.ToInt64(value, CultureInfo.InvariantCulture));
        }

        return (type, value) switch
        {
            _ when type == typeof(DateTime) && value is string s => DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
            _ when type == typeof(DateTimeOffset) && value is string s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture),
            _ when type == typeof(DateTimeOffset) && value is DateTime d => new DateTimeOffset(d),
            _ when type == typeof(TimeSpan) && value is string s => TimeSpan.Parse(s, CultureInfo.InvariantCulture),
            _ when type == typeof(Guid) && value is string s => Guid.Parse(s),
            _ when type == typeof(Guid) && value is byte[] b => new Guid(b),
            _ when type == typeof(decimal) && value is string s => decimal.Parse(s, CultureInfo.InvariantCulture),
            _ => Convert.ChangeType(value, type, CultureInfo.InvariantCulture),
        };
    }
}
