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
    private readonly Func<ISharedEntity>? _create;
    private readonly PropertyInfo _keyProperty;
    private ColumnConversion?[] _conversions;

    private DbEntityMapping(Func<ISharedEntity>? create, SharedEntityType sharedType, PropertyInfo keyProperty, string table, string keyColumn, string? versionColumn, string[] columns)
    {
        _create = create;
        _conversions = new ColumnConversion?[columns.Length];
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
        DbEntityMapping mapping = Create(typeof(T), new T().SharedType, static () => new T(), table, keyColumn, versionColumn, columns);
        return mapping._keyProperty.SetMethod is null
            ? throw new InvalidOperationException($"The key property {typeof(T)}.{mapping.SharedType.KeyProperty} needs a setter for the loader to create instances.")
            : mapping;
    }

    /// <summary>
    /// Maps the <c>[SharedEntity]</c> class <paramref name="entityType"/> (known only at run time) for loaders that reload, check and write
    /// instances created elsewhere (an ORM's): it needs no parameterless constructor, and
    /// <see cref="DbEntityLoader.FindAsync{T}(object, CancellationToken)"/> cannot create it.
    /// </summary>
    /// <param name="entityType">The entity class.</param>
    /// <param name="table">The table; default: the class name.</param>
    /// <param name="keyColumn">The key column; default: the key property's name.</param>
    /// <param name="versionColumn">The version column; default: the version property's name.</param>
    /// <param name="columns">Column names by shared property name, for those that differ from the property name.</param>
    /// <exception cref="ArgumentException"><paramref name="entityType"/> is not a <c>[SharedEntity]</c> class, or a name is not an identifier.</exception>
    public static DbEntityMapping ForType(
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.NonPublicConstructors)]
        Type entityType,
        string? table = null, string? keyColumn = null, string? versionColumn = null, IReadOnlyDictionary<string, string>? columns = null)
    {
        ArgumentNullException.ThrowIfNull(entityType);
        if (!typeof(ISharedEntity).IsAssignableFrom(entityType) || entityType.IsAbstract || entityType.IsInterface)
        {
            throw new ArgumentException($"{entityType} is not a [SharedEntity] class.", nameof(entityType));
        }

        SharedEntityType type = ((ISharedEntity)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(entityType)).SharedType;
        return Create(entityType, type, null, table, keyColumn, versionColumn, columns);
    }

    private static DbEntityMapping Create(
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type clrType, SharedEntityType type, Func<ISharedEntity>? create,
        string? table, string? keyColumn, string? versionColumn, IReadOnlyDictionary<string, string>? columns)
    {
        PropertyInfo key = clrType.GetProperty(type.KeyProperty)
            ?? throw new InvalidOperationException($"{clrType} has no public key property {type.KeyProperty}.");
        string[] names = [.. type.Properties.Select(p => Identifier(columns is not null && columns.TryGetValue(p.Name, out string? c) ? c : p.Name, "column", nameof(columns)))];
        Type? versionType = type.VersionProperty is { } v ? clrType.GetProperty(v)?.PropertyType : null;
        return new DbEntityMapping(
            create,
            type,
            key,
            Identifier(table ?? clrType.Name, "table", nameof(table)),
            Identifier(keyColumn ?? type.KeyProperty, "key column", nameof(keyColumn)),
            type.VersionProperty is null ? null : Identifier(versionColumn ?? type.VersionProperty, "version column", nameof(versionColumn)),
            names)
        {
            NarrowVersion = versionType is not null && (Nullable.GetUnderlyingType(versionType) ?? versionType) != typeof(long),
        };
    }

    /// <summary>
    /// A copy of this mapping whose shared property <paramref name="property"/> is stored converted (a value object
    /// as its text, a list as JSON): a non-null column value as the driver returns it is first made a
    /// <paramref name="columnType"/> (a driver may return a <see cref="long"/> for an <see cref="int"/> column, a text
    /// for a date), then <paramref name="fromColumn"/> turns it into the property's value; <paramref name="toColumn"/>
    /// turns a non-null property value into the parameter written. Reloads and writes use them; nulls pass unconverted.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="property"/> is not a shared property of the entity.</exception>
    public DbEntityMapping WithConversion(string property, Type columnType, Func<object, object?> fromColumn, Func<object, object?> toColumn)
    {
        ArgumentNullException.ThrowIfNull(property);
        ArgumentNullException.ThrowIfNull(columnType);
        ArgumentNullException.ThrowIfNull(fromColumn);
        ArgumentNullException.ThrowIfNull(toColumn);
        int index = SharedType.Properties.ToList().FindIndex(p => p.Name == property);
        if (index < 0)
        {
            throw new ArgumentException(
                $"{SharedType.Name} has no shared property {property} (shared: {string.Join(", ", SharedType.Properties.Select(p => p.Name))}).", nameof(property));
        }

        var copy = (DbEntityMapping)MemberwiseClone();
        copy._conversions = (ColumnConversion?[])_conversions.Clone();
        copy._conversions[index] = new ColumnConversion(columnType, fromColumn, toColumn);
        return copy;
    }

    /// <summary>Shared property <paramref name="index"/>'s value from its column's value as the driver returned it.</summary>
    internal object? FromColumn(int index, object? value) =>
        value is null or DBNull ? null
        : _conversions[index] is { } conversion ? conversion.FromColumn(DbValues.To(value, conversion.ColumnType)!)
        : DbValues.To(value, SharedType.Properties[index].PropertyType);

    /// <summary>The parameter value that writes shared property <paramref name="index"/>'s <paramref name="value"/>.</summary>
    internal object ToColumn(int index, object? value) =>
        DbValues.ToParameter(value is not null && _conversions[index] is { } conversion ? conversion.ToColumn(value) : value);

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
        ISharedEntity entity = _create?.Invoke() ?? throw new InvalidOperationException(
            $"The mapping of {EntityType} was made without a constructor (DbEntityMapping.ForType): it reloads and writes instances created " +
            "elsewhere, and creates none. Map it with DbEntityMapping.For<T>() to load new instances.");
        _keyProperty.SetValue(entity, NormalizeKey(key));
        return entity;
    }

    /// <summary>The key as the key property's type (database drivers return e.g. <see cref="long"/> for an <see cref="int"/> key).</summary>
    internal object NormalizeKey(object key) => DbValues.To(key, KeyType) ?? throw new InvalidOperationException($"{SharedType.Name}: a null key.");

    private sealed record ColumnConversion(Type ColumnType, Func<object, object?> FromColumn, Func<object, object?> ToColumn);
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
            _ when type == typeof(DateOnly) && value is string s => DateOnly.Parse(s, CultureInfo.InvariantCulture),
            _ when type == typeof(DateOnly) && value is DateTime d => DateOnly.FromDateTime(d),
            _ when type == typeof(TimeOnly) && value is string s => TimeOnly.Parse(s, CultureInfo.InvariantCulture),
            _ when type == typeof(TimeOnly) && value is TimeSpan t => TimeOnly.FromTimeSpan(t),
            _ when type == typeof(Guid) && value is string s => Guid.Parse(s),
            _ when type == typeof(Guid) && value is byte[] b => new Guid(b),
            _ when type == typeof(decimal) && value is string s => decimal.Parse(s, CultureInfo.InvariantCulture),
            _ => Convert.ChangeType(value, type, CultureInfo.InvariantCulture),
        };
    }
}
