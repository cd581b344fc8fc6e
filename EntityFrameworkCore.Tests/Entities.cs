using Microsoft.EntityFrameworkCore;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>A versioned entity with an <see cref="int"/> version.</summary>
[SharedEntity]
public partial class Counter
{
    public int Id { get; set; }

    public int Version { get; set; }

    public partial long Value { get; set; }
}

/// <summary>A serial-only (seed-compatible) entity: no version column.</summary>
[SharedEntity]
public partial class Note
{
    public int Id { get; set; }

    public partial string Text { get; set; }
}

/// <summary>A versioned entity that owns data of its own: the version guards the owned columns too.</summary>
[SharedEntity]
public partial class Invoice
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Number { get; set; }

    public Address BillingAddress { get; set; } = new();
}

/// <summary>Owned by <see cref="Invoice"/> (stored in its row).</summary>
[Owned]
public sealed class Address
{
    public string Street { get; set; } = "";

    public string City { get; set; } = "";
}

/// <summary>One "process"'s context.</summary>
public sealed class SheetContext(DbContextOptions<SheetContext> options) : DbContext(options)
{
    public DbSet<Sheet> Sheets => Set<Sheet>();

    public DbSet<Counter> Counters => Set<Counter>();

    public DbSet<Note> Notes => Set<Note>();

    public DbSet<Invoice> Invoices => Set<Invoice>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Sheet>().ToTable("sheets");
}

/// <summary>A shared entity that owns a collection, which SharedEntities refuses.</summary>
[SharedEntity]
public partial class Ledger
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Name { get; set; }

    public List<Address> Addresses { get; set; } = [];
}

/// <summary>A model SharedEntities refuses: a shared entity that owns a collection.</summary>
public sealed class OwnedCollectionContext(DbContextOptions<OwnedCollectionContext> options) : DbContext(options)
{
    public DbSet<Ledger> Ledgers => Set<Ledger>();
}
