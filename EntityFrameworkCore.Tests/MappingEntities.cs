using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>A value object stored as its text through a value converter.</summary>
public sealed record EmailAddress(string Value);

/// <summary>
/// Shared properties that EF Core reads through its own machinery: a value object and a list through value
/// converters, a <see cref="DateOnly"/> (text on SQLite).
/// </summary>
[SharedEntity]
public partial class Member
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial EmailAddress Email { get; set; }

    public partial List<string> Roles { get; set; }

    public partial DateOnly JoinedOn { get; set; }
}

/// <summary>Members, the sheets with their TPH subclass, badges (constructor binding), parcels (a complex value) and folders (proxies).</summary>
public sealed class MappingContext(DbContextOptions<MappingContext> options) : DbContext(options)
{
    public DbSet<Member> Members => Set<Member>();

    public DbSet<Sheet> Sheets => Set<Sheet>();

    public DbSet<Badge> Badges => Set<Badge>();

    public DbSet<Parcel> Parcels => Set<Parcel>();

    public DbSet<Folder> Folders => Set<Folder>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<ArchivedSheet>();
        modelBuilder.Entity<Member>(member =>
        {
            member.Property(m => m.Email).HasConversion(e => e.Value, text => new EmailAddress(text));
            member.Property(m => m.Roles).HasConversion(
                roles => string.Join(',', roles),
                text => text.Length == 0 ? new List<string>() : text.Split(',', StringSplitOptions.None).ToList(),
                new ValueComparer<List<string>>((x, y) => x!.SequenceEqual(y!), roles => roles.Aggregate(0, (h, r) => HashCode.Combine(h, r)), roles => roles.ToList()));
        });
    }
}

/// <summary>A shared property mapped as a complex value: not one column.</summary>
[SharedEntity]
public partial class Crate
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial Size Size { get; set; }
}

public sealed class ComplexSharedContext(DbContextOptions<ComplexSharedContext> options) : DbContext(options)
{
    public DbSet<Crate> Crates => Set<Crate>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Crate>().ComplexProperty(c => c.Size);
}

/// <summary>A strongly typed key through a value converter.</summary>
public readonly record struct TicketId(int Value);

[SharedEntity]
public partial class Ticket
{
    public TicketId Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }
}

public sealed class ConvertedKeyContext(DbContextOptions<ConvertedKeyContext> options) : DbContext(options)
{
    public DbSet<Ticket> Tickets => Set<Ticket>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<Ticket>().Property(t => t.Id).HasConversion(id => id.Value, value => new TicketId(value));
}

/// <summary>Sheets in a TPC hierarchy: one table per class.</summary>
public sealed class TpcContext(DbContextOptions<TpcContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Sheet>().UseTpcMappingStrategy();
        modelBuilder.Entity<ArchivedSheet>();
    }
}

/// <summary>Sheets mapped to a view.</summary>
public sealed class ViewContext(DbContextOptions<ViewContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Sheet>().ToView("sheets_view");
}
