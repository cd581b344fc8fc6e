using Microsoft.EntityFrameworkCore;
using SharedEntities;

namespace MemcachedEfCore;

[SharedEntity]
public partial class Sheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }
}

public sealed class SheetsContext(DbContextOptions<SheetsContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();
}
