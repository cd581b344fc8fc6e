using SharedEntities;

namespace SharedEntities.Tests;

/// <summary>The design's example: a versioned (strict) entity.</summary>
[SharedEntity]
public partial class Sheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }

    public partial DateTime LastModified { get; set; }

    public string LocalNote { get; set; } = "";
}

/// <summary>A versioned counter for contention tests.</summary>
[SharedEntity]
public partial class Counter
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial long Value { get; set; }
}

/// <summary>A serial-only entity: no version column, as the seed recipe had.</summary>
[SharedEntity(Name = "note")]
public partial class Note
{
    public string Id { get; set; } = "";

    public partial string Text { get; set; }
}
