namespace SharedEntities.Tests.Support;

/// <summary>The entity most tests use: versioned (a version column), one shared property.</summary>
[SharedEntity]
public partial class Sheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }
}
