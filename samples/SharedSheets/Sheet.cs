using Microsoft.EntityFrameworkCore;
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

    public partial decimal Total { get; set; }

    /// <summary>The contended counter: every worker adds to it.</summary>
    public partial long Edits { get; set; }
}

/// <summary>The sample's database: one table of sheets.</summary>
public sealed class SheetsContext(DbContextOptions<SheetsContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();
}
