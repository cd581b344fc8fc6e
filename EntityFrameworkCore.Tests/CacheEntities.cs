using System.ComponentModel.DataAnnotations.Schema;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// A versioned entity with mutable values: a list stored through a value converter with a copying comparer (a plain
/// mapped property: the runtime's reloads read shared columns without EF Core's converters), a byte array, and a
/// shadow property (<c>Region</c>).
/// </summary>
[SharedEntity]
public partial class Profile
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Name { get; set; }

    public partial byte[] Avatar { get; set; }

    public List<string> Tags { get; set; } = [];
}

/// <summary>The entity cache stories' model: <see cref="Profile"/> and <see cref="Sheet"/>, both cached.</summary>
public sealed class CacheContext(DbContextOptions<CacheContext> options) : DbContext(options)
{
    public DbSet<Profile> Profiles => Set<Profile>();

    public DbSet<Sheet> Sheets => Set<Sheet>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Sheet>().ToTable("sheets");
        modelBuilder.Entity<Profile>(profile =>
        {
            profile.Property(p => p.Tags).HasConversion(
                tags => string.Join(',', tags),
                text => text.Length == 0 ? new List<string>() : text.Split(',', StringSplitOptions.None).ToList(),
                new ValueComparer<List<string>>((x, y) => x!.SequenceEqual(y!), tags => tags.Aggregate(0, (h, t) => HashCode.Combine(h, t)), tags => tags.ToList()));
            profile.Property<string>("Region");
        });
    }
}

/// <summary>A list converted to text without a comparer: EF Core snapshots it by reference, which the cache refuses.</summary>
[SharedEntity]
public partial class Tagged
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial List<string> Labels { get; set; }
}

public sealed class ConverterWithoutComparerContext(DbContextOptions<ConverterWithoutComparerContext> options) : DbContext(options)
{
    public DbSet<Tagged> Tagged => Set<Tagged>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<Tagged>().Property(t => t.Labels).HasConversion(labels => string.Join(',', labels), text => text.Split(',', StringSplitOptions.None).ToList());
}

/// <summary>A complex value, stored in its owner's columns.</summary>
[ComplexType]
public sealed class Size
{
    public int Width { get; set; }

    public int Height { get; set; }
}

[SharedEntity]
public partial class Parcel
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Label { get; set; }

    public Size Size { get; set; } = new();
}

public sealed class ComplexContext(DbContextOptions<ComplexContext> options) : DbContext(options)
{
    public DbSet<Parcel> Parcels => Set<Parcel>();
}

/// <summary>EF Core creates it through its constructor with a parameter: there is no parameterless one.</summary>
[SharedEntity]
public partial class Badge
{
    public Badge(int id) => Id = id;

    public int Id { get; private set; }

    public long Version { get; set; }

    public partial string Label { get; set; }
}

public sealed class ConstructorContext(DbContextOptions<ConstructorContext> options) : DbContext(options)
{
    public DbSet<Badge> Badges => Set<Badge>();
}

/// <summary>A shared entity with a lazy-loaded navigation, for a context with lazy-loading proxies.</summary>
[SharedEntity]
public partial class Folder
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Name { get; set; }

    public virtual ICollection<FolderItem> Items { get; set; } = [];
}

public class FolderItem
{
    public int Id { get; set; }

    public int FolderId { get; set; }
}

public sealed class ProxyContext(DbContextOptions<ProxyContext> options) : DbContext(options)
{
    public DbSet<Folder> Folders => Set<Folder>();
}

/// <summary>Sheets with a global query filter, which a row served from the cache would escape.</summary>
public sealed class FilterContext(DbContextOptions<FilterContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Sheet>().HasQueryFilter(s => s.Title != "hidden");
}

/// <summary>A plain class derived from a shared entity: a TPH hierarchy.</summary>
public class ArchivedSheet : Sheet
{
    public DateTime ArchivedAt { get; set; }
}

public sealed class HierarchyContext(DbContextOptions<HierarchyContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();

    public DbSet<ArchivedSheet> Archived => Set<ArchivedSheet>();
}
