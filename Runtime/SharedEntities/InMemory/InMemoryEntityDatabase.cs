using SharedEntities.Protocol;

namespace SharedEntities.InMemory;

/// <summary>
/// A database in memory for tests and demos: rows of shared entities with a version, writers that take row locks
/// (one lock for the whole database, which is stricter), and connections that can open a REPEATABLE READ snapshot
/// so the stale-snapshot behaviour can be shown without a server. Several <see cref="Coherence"/> instances connect to
/// one database to play several processes.
/// </summary>
internal sealed class InMemoryEntityDatabase
{
    private readonly Lock _sync = new();
    private Dictionary<RowKey, Row> _rows = [];

    /// <summary>Taken by write transactions from their first write to their end, and by locking version reads.</summary>
    internal SemaphoreSlim RowLock { get; } = new(1, 1);

    /// <summary>The number of rows.</summary>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _rows.Count;
            }
        }
    }

    /// <summary>Inserts (or replaces) the row of <paramref name="entity"/> with its current values and version.</summary>
    public void Insert(ISharedEntity entity)
    {
        ArgumentNullException.ThrowIfNull(entity);
        Row row = Row.From(entity, entity is IVersionedSharedEntity v ? v.SharedVersion : 0);
        lock (_sync)
        {
            _rows = new Dictionary<RowKey, Row>(_rows) { [RowKey.Of(entity)] = row };
        }
    }

    /// <summary>Opens a connection for one runtime (one "process").</summary>
    public InMemoryEntityConnection Connect(Coherence coherence) => new(this, coherence);

    /// <summary>The committed version of a row, or <see langword="null"/> if there is none.</summary>
    public long? VersionOf(string entityName, object key) => Read(new RowKey(entityName, StoreKeys.FormatKeyValue(key)))?.Version;

    /// <summary>The committed value of a shared property, by the property's index in <see cref="SharedEntityType.Properties"/>.</summary>
    public object? ValueOf(string entityName, object key, int propertyIndex) =>
        Read(new RowKey(entityName, StoreKeys.FormatKeyValue(key)))?.Values[propertyIndex];

    /// <summary>
    /// Changes a row without the library, as a SQL script or another application would: the protocol cannot see it
    /// until the entity's token expires (see <see cref="CoherenceOptions.TokenTtl"/>).
    /// </summary>
    public void WriteBypassingLibrary(string entityName, object key, int propertyIndex, object? value, bool bumpVersion)
    {
        var rowKey = new RowKey(entityName, StoreKeys.FormatKeyValue(key));
        lock (_sync)
        {
            Row row = _rows.TryGetValue(rowKey, out Row? found) ? found : throw new KeyNotFoundException($"No row {entityName} {key}.");
            object?[] values = (object?[])row.Values.Clone();
            values[propertyIndex] = value;
            _rows = new Dictionary<RowKey, Row>(_rows) { [rowKey] = new Row(bumpVersion ? row.Version + 1 : row.Version, values) };
        }
    }

    /// <summary>The current rows; immutable, so a snapshot is a reference to them.</summary>
    internal IReadOnlyDictionary<RowKey, Row> Snapshot()
    {
        lock (_sync)
        {
            return _rows;
        }
    }

    internal Row? Read(RowKey key)
    {
        lock (_sync)
        {
            return _rows.GetValueOrDefault(key);
        }
    }

    /// <summary>Applies a transaction's writes at once (its commit).</summary>
    internal void Apply(IReadOnlyDictionary<RowKey, Row?> writes)
    {
        lock (_sync)
        {
            var rows = new Dictionary<RowKey, Row>(_rows);
            foreach (KeyValuePair<RowKey, Row?> write in writes)
            {
                if (write.Value is null)
                {
                    rows.Remove(write.Key);
                }
                else
                {
                    rows[write.Key] = write.Value;
                }
            }

            _rows = rows;
        }
    }

    internal readonly record struct RowKey(string Entity, string Key)
    {
        public static RowKey Of(ISharedEntity entity) => new(entity.SharedType.Name, StoreKeys.FormatKeyValue(entity.SharedKey));
    }

    internal sealed record Row(long Version, object?[] Values)
    {
        public static Row From(ISharedEntity entity, long version)
        {
            var values = new object?[entity.SharedType.Properties.Length];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = entity.GetSharedValue(i);
            }

            return new Row(version, values);
        }
    }
}
