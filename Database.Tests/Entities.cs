namespace SharedEntities.Database.Tests;

/// <summary>A versioned counter for contention tests.</summary>
[SharedEntity]
public partial class Counter
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial long Value { get; set; }
}

/// <summary>A generic entity: each closed type is an entity (and a table) of its own.</summary>
[SharedEntity]
public partial class Cell<T>
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial T Value { get; set; }
}
