using SharedEntities;

namespace SharedSheets;

/// <summary>The spreadsheet of both seed stories: renamed, deleted, recalculated, counted.</summary>
[SharedEntity]
public partial class Sheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }

    public partial DateTime LastModified { get; set; }

    public partial long Recalculations { get; set; }
}
