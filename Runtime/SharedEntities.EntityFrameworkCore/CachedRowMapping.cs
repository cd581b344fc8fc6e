using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Metadata;
using SharedEntities.Caching;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// How the rows of one EF Core entity type go into the process-wide entity cache (<see cref="EntityCache"/>) and come
/// out again as new instances: the values of every property of the entity type (shadow ones included) in the order of
/// <see cref="IEntityType.GetProperties"/>, mutable values copied with the property's <see cref="ValueComparer"/>; a
/// parameterless constructor and setters compiled once. One per entity type of a model (a runtime annotation), built
/// on its first use.
/// </summary>
/// <remarks>
/// The <see cref="Shape"/> of the rows is one object per (class, table, property list) for the whole process, not the
/// <see cref="IEntityType"/>: EF Core builds a model per context type and per internal service provider (other
/// options, a design-time build, tests), and every model that maps the class the same way reads and writes the same
/// values, so the contexts of all of them share the rows.
/// </remarks>
internal sealed class CachedRowMapping
{
    private const string AnnotationName = "SharedEntities:CachedRowMapping";
    private static readonly ConcurrentDictionary<string, RowShape> Shapes = new(StringComparer.Ordinal);
    private static readonly MethodInfo SetFieldValue = typeof(FieldInfo).GetMethod(nameof(FieldInfo.SetValue), [typeof(object), typeof(object)])!;

    // Reference types whose instances are never changed in place (no copy needed for each context).
    private static readonly HashSet<Type> ImmutableReferenceTypes =
        [typeof(string), typeof(Uri), typeof(Version), typeof(System.Net.IPAddress), typeof(System.Net.NetworkInformation.PhysicalAddress)];

    private readonly IProperty[] _properties = [];
    private readonly Func<object?, object?>?[] _copies = [];
    private readonly Action<object, object?>?[] _setters = [];
    private readonly int[] _shadow = [];
    private readonly int _version;
    private readonly int _key;
    private readonly Func<object>? _create;

    private CachedRowMapping(IEntityType entityType)
    {
        EntityType = entityType;
        SharedType = SharedEntityConvention.SharedTypeOf(entityType.ClrType)
            ?? throw new InvalidOperationException($"{entityType.DisplayName()} is not a [SharedEntity] class.");
        Shape = RowShape.None;
        if (SharedType.Mode != SharedEntityMode.Versioned)
        {
            return; // the cache keeps versioned entities only
        }

        Refusal = Refuse(entityType, SharedType);
        if (Refusal is not null)
        {
            return;
        }

        _properties = [.. entityType.GetProperties()];
        _copies = new Func<object?, object?>?[_properties.Length];
        _setters = new Action<object, object?>?[_properties.Length];
        var shadow = new List<int>();
        for (int i = 0; i < _properties.Length; i++)
        {
            IProperty property = _properties[i];
            _copies[i] = CopyOf(property);
            if (property.IsShadowProperty())
            {
                shadow.Add(i);
            }
            else
            {
                _setters[i] = CompileSetter(property);
            }
        }

        _shadow = [.. shadow];
        _version = Array.FindIndex(_properties, p => p.Name == SharedType.VersionProperty);
        _key = Array.FindIndex(_properties, p => p.Name == SharedType.KeyProperty);
        _create = Expression.Lambda<Func<object>>(Expression.Convert(Expression.New(((ConstructorBinding)entityType.ConstructorBinding!).Constructor), typeof(object))).Compile();
        Shape = ShapeOf(entityType, _properties);
    }

    /// <summary>The entity type.</summary>
    public IEntityType EntityType { get; }

    /// <summary>The generated descriptor of its class.</summary>
    public SharedEntityType SharedType { get; }

    /// <summary>What the cached rows of this mapping are (<see cref="CachedEntity.Shape"/>): one object per mapping for the process.</summary>
    public object Shape { get; }

    /// <summary>Why rows of this type cannot be served from the cache faithfully, or <see langword="null"/>.</summary>
    public string? Refusal { get; }

    /// <summary>Whether rows of this type can be cached: versioned and nothing refused.</summary>
    public bool CanCache => _create is not null;

    /// <summary>The mapping of <paramref name="entityType"/>, built on first use and kept with the model.</summary>
    public static CachedRowMapping For(IEntityType entityType) =>
        entityType.GetOrAddRuntimeAnnotationValue(AnnotationName, static type => new CachedRowMapping(type!), entityType);

    /// <summary>The properties whose values a cached row holds, in its order: every property of the entity type, shadow ones included.</summary>
    public IReadOnlyList<IProperty> Properties => _properties;

    /// <summary>
    /// The row a query just materialized: <paramref name="values"/> holds every property's value (in the order of
    /// <see cref="Properties"/>) as EF Core read it; mutable ones are copied in place, so the cache keeps no object the
    /// query's instance holds.
    /// </summary>
    public CachedEntity Capture(object?[] values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Copy(i, values[i]);
        }

        return RowOf(values);
    }

    /// <summary>A new instance with only its key set: what <see cref="EntityCache.ServeAsync"/> takes for each key.</summary>
    public object CreateProbe(object key)
    {
        object probe = _create!();
        _setters[_key]!(probe, key);
        return probe;
    }

    /// <summary>
    /// Writes <paramref name="row"/> into <paramref name="instance"/> (a probe of the same key) and starts tracking it in
    /// <paramref name="context"/> as <see cref="EntityState.Unchanged"/>: every value is copied again, so no two
    /// contexts ever share a mutable value.
    /// </summary>
    public void Materialize(CachedEntity row, object instance, DbContext context)
    {
        ImmutableArray<object?> values = row.Values;
        for (int i = 0; i < _setters.Length; i++)
        {
            _setters[i]?.Invoke(instance, Copy(i, values[i]));
        }

        EntityEntry entry = context.Entry(instance);
        if (_shadow.Length > 0)
        {
            PropertyValues current = entry.CurrentValues;
            foreach (int i in _shadow)
            {
                current[_properties[i]] = Copy(i, values[i]);
            }
        }

        entry.State = EntityState.Unchanged; // the values are the row's: original = current
    }

    private object? Copy(int index, object? value) => value is not null && _copies[index] is { } copy ? copy(value) : value;

    private CachedEntity RowOf(object?[] row) =>
        new(Shape, Convert.ToInt64(row[_version], CultureInfo.InvariantCulture), ImmutableCollectionsMarshal.AsImmutableArray(row));

    // EF Core's own copy for change tracking where it makes one (collections, converted values with a comparer); a
    // copy of an array of values where EF Core compares it by reference (byte[]); none for immutable values.
    private static Func<object?, object?>? CopyOf(IProperty property)
    {
        ValueComparer comparer = property.GetValueComparer();
        if (!IsIdentity(comparer.SnapshotExpression))
        {
            return comparer.Snapshot;
        }

        Type type = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        return type.IsArray && type.GetElementType()!.IsValueType && type.GetArrayRank() == 1
            ? static value => ((Array)value!).Clone()
            : null;
    }

    private static bool IsMutableWithoutCopy(IProperty property)
    {
        Type type = Nullable.GetUnderlyingType(property.ClrType) ?? property.ClrType;
        return !type.IsValueType && !ImmutableReferenceTypes.Contains(type) && CopyOf(property) is null;
    }

    private static bool IsIdentity(LambdaExpression snapshot) => snapshot.Parameters.Count == 1 && ReferenceEquals(snapshot.Body, snapshot.Parameters[0]);

    // EF Core's materialization member (the backing field unless the access mode says otherwise), as a compiled setter.
    private static Action<object, object?> CompileSetter(IProperty property)
    {
        MemberInfo member = property.GetMemberInfo(forMaterialization: true, forSet: true);
        ParameterExpression entity = Expression.Parameter(typeof(object), "entity");
        ParameterExpression value = Expression.Parameter(typeof(object), "value");
        Expression target = Expression.Convert(entity, property.DeclaringType.ClrType);
        Expression body = member switch
        {
            PropertyInfo indexer when property.IsIndexerProperty() =>
                Expression.Assign(Expression.MakeIndex(target, indexer, [Expression.Constant(property.Name)]), Expression.Convert(value, indexer.PropertyType)),
            FieldInfo { IsInitOnly: true } field => Expression.Call(Expression.Constant(field), SetFieldValue, entity, value),
            FieldInfo field => Expression.Assign(Expression.Field(target, field), Expression.Convert(value, field.FieldType)),
            PropertyInfo clrProperty => Expression.Assign(Expression.Property(target, clrProperty), Expression.Convert(value, clrProperty.PropertyType)),
            _ => throw new InvalidOperationException($"{property.DeclaringType.DisplayName()}.{property.Name} has no member EF Core materializes it through."),
        };
        return Expression.Lambda<Action<object, object?>>(body, entity, value).Compile();
    }

    private static RowShape ShapeOf(IEntityType entityType, IProperty[] properties)
    {
        string table = entityType.GetTableName()!;
        var identifier = StoreObjectIdentifier.Table(table, entityType.GetSchema());
        var description = new StringBuilder()
            .Append(entityType.ClrType.AssemblyQualifiedName).Append(" in ").Append(entityType.GetSchema()).Append('.').Append(table).Append(':');
        foreach (IProperty property in properties)
        {
            description.Append(' ').Append(property.Name).Append('=').Append(property.GetColumnName(identifier))
                .Append(" (").Append(property.ClrType.AssemblyQualifiedName).Append(property.IsShadowProperty() ? ", shadow)" : ")");
        }

        string key = description.ToString();
        return Shapes.GetOrAdd(key, static k => new RowShape(k));
    }

    // What the cache cannot materialize faithfully: null if nothing, else one line per feature, each with its fix.
    private static string? Refuse(IEntityType entityType, SharedEntityType shared)
    {
        var lines = new List<string>();
        void Add(string what, string why, string remap) => lines.Add($"- {what}: {why}. Or {remap}.");

        if (entityType.IsOwned())
        {
            Add("it is an owned type", "its rows belong to their owner's entries, which a cached row does not carry", "map it as an entity of its own");
        }

        foreach (INavigation navigation in entityType.GetNavigations())
        {
            if (navigation.ForeignKey.IsOwnership && !navigation.IsOnDependent)
            {
                Add(
                    $"it owns {navigation.Name} ({navigation.TargetEntityType.DisplayName()}), an owned navigation",
                    "owned data is tracked in entries of its own, which a cached row does not carry, so an instance served from the cache would come without it",
                    $"map {navigation.TargetEntityType.DisplayName()} as an entity of its own (a relationship), and read it with a query and Include");
            }
        }

        foreach (IComplexProperty complex in entityType.GetComplexProperties())
        {
            Add(
                $"it has the complex property {complex.Name} ({complex.ClrType.Name}; ComplexProperty or [ComplexType])",
                "the members of a complex value are not properties of the entity type, which is what a cached row holds",
                $"map the members of {complex.Name} as properties of the entity, or {complex.ClrType.Name} as an entity of its own");
        }

        InstantiationBinding? binding = entityType.ConstructorBinding;
        if (UsesProxies(entityType.Model) || binding is FactoryMethodBinding || (binding is not null && binding.RuntimeType != entityType.ClrType))
        {
            Add(
                "EF Core creates it as a proxy (UseLazyLoadingProxies or UseChangeTrackingProxies)",
                "an instance served from the cache would be the plain class, without the proxy's lazy loading or change notifications",
                "turn the proxies off for this context (load related data with Include)");
        }
        else if (binding is not ConstructorBinding { ParameterBindings.Count: 0 })
        {
            string parameters = binding is null ? "none bound" : string.Join(", ", binding.ParameterBindings.SelectMany(p => p.ConsumedProperties).Select(p => p.Name));
            Add(
                $"it has no parameterless constructor: EF Core binds a constructor with parameters ({parameters})",
                "a served instance is created with a parameterless constructor and then given every mapped value, which may not be what that constructor does",
                "give the class a parameterless constructor (it may be private; EF Core prefers it)");
        }

        foreach (IServiceProperty service in entityType.GetServiceProperties())
        {
            Add(
                $"EF Core injects its service property {service.Name} ({service.ClrType.Name}: lazy loading through ILazyLoader, the context, …)",
                "an instance served from the cache would not have it",
                "remove the service property (load related data with Include)");
        }

        if (entityType.BaseType is not null || entityType.GetDirectlyDerivedTypes().Any())
        {
            IEntityType root = entityType.GetRootType();
            Add(
                $"it is part of the inheritance hierarchy of {root.DisplayName()} (TPH, TPT or TPC)",
                "a cached row is materialized as one class, and a row of a hierarchy may be of another",
                "map the classes without inheritance");
        }

        if (entityType.FindPrimaryKey() is not { Properties: [{ } key] } || key.Name != shared.KeyProperty)
        {
            string found = entityType.FindPrimaryKey() is { } pk ? string.Join(", ", pk.Properties.Select(p => p.Name)) : "none";
            Add(
                $"its primary key ({found}) is not its shared key {shared.KeyProperty}",
                "reads by key find the tracked instance and the row by the shared key",
                $"make {shared.KeyProperty} the primary key (HasKey)");
        }

        if (entityType.FindProperty(shared.VersionProperty!) is null)
        {
            Add(
                $"its version property {shared.VersionProperty} is not mapped",
                "a cached row is served only for a token of exactly its version",
                $"map {shared.VersionProperty} (the library increments it on every write)");
        }

        if (entityType.GetDeclaredQueryFilters().Count > 0)
        {
            Add(
                "it has a global query filter (HasQueryFilter)",
                "a row served from the cache is not filtered, so a context could be served a row its filter hides (another tenant's, a soft-deleted one)",
                "remove the query filter");
        }

        if (entityType.GetTableName() is null)
        {
            Add(
                "it is not mapped to a table (a view, a SQL query or a function)",
                "a cached row is vouched for by versions read from the entity's table",
                "map it to its table");
        }

        foreach (IProperty property in entityType.GetProperties())
        {
            if (IsMutableWithoutCopy(property))
            {
                Add(
                    $"its property {property.Name} ({property.ClrType.Name}) holds a mutable value that EF Core snapshots by reference (its ValueComparer makes no copy)",
                    "the cached row and every context served from it would share that one instance",
                    $"give {property.Name} a ValueComparer whose snapshot copies the value (HasConversion(converter, comparer), or SetValueComparer)");
            }
        }

        return lines.Count == 0
            ? null
            : $"SharedEntities cannot serve {entityType.DisplayName()} (entity name \"{shared.Name}\") from its entity cache, which serves every versioned " +
              $"shared entity that the options do not exclude:{Environment.NewLine}{string.Join(Environment.NewLine, lines)}{Environment.NewLine}" +
              $"Fix: exclude it from the cache by its entity name, options.EntityCache.ExcludedEntities.Add(\"{shared.Name}\") (or leave it out of " +
              "EntityCache.IncludedEntities) in the CoherenceOptions of the Coherence given to UseSharedEntities; its reads then go to the database, " +
              "and everything else works as before. Or remap it as each line says.";
    }

    // The proxies package marks the model and makes its proxies when EF Core materializes, not in the model's bindings.
    private static bool UsesProxies(IModel model) =>
        model.FindAnnotation("Proxies:LazyLoading")?.Value is true || model.FindAnnotation("Proxies:ChangeTracking")?.Value is true;

    /// <summary>What the values of a cached row mean: one instance per distinct mapping in the process.</summary>
    private sealed class RowShape(string description)
    {
        public static readonly RowShape None = new("(not cached)");

        public override string ToString() => description;
    }
}
