using System.ComponentModel.DataAnnotations;
using System.ComponentModel.DataAnnotations.Schema;
using BenchmarkDotNet.Attributes;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using SharedEntities.Benchmarks.Memcached;
using SharedEntities.EntityFrameworkCore;
using SharedEntities.Memcached;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.Benchmarks.EntityFrameworkCore;

/// <summary>
/// One committed write of one row on PostgreSQL: plain EF Core <c>SaveChangesAsync</c> with a concurrency token (the
/// baseline) beside the same write through SharedEntities (<c>UseSharedEntities</c>, tokens in memcached), with and
/// without a checked read first. Both contexts live for the whole run with their row tracked, as a long-lived object
/// would be; every write changes the title and moves the version on. The PostgreSQL cluster and memcached are the
/// benchmark's own (loopback, free ports). Memcached round trips per write are counted in the global setup and printed
/// to the log.
/// </summary>
/// <example>dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*EfWrite*'</example>
public class EfWriteBenchmarks
{
    private PostgresCluster _postgres = null!;
    private LocalMemcached _memcached = null!;
    private MemcachedStore _store = null!;
    private Coherence _coherence = null!;
    private Coherence _backgroundCoherence = null!;
    private PlainContext _plain = null!;
    private SharedContext _shared = null!;
    private SharedContext _background = null!;
    private PlainRow _plainRow = null!;
    private SharedRow _sharedRow = null!;
    private SharedRow _backgroundRow = null!;
    private int _writes;

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup()
    {
        _plain.Dispose();
        _shared.Dispose();
        _background.Dispose();
        _coherence.Dispose();
        _backgroundCoherence.Dispose();
        _store.Dispose();
        _memcached.Dispose();
        NpgsqlConnection.ClearAllPools();
        _postgres.Dispose();
    }

    [Benchmark(Baseline = true, Description = "plain EF Core: SaveChangesAsync with a concurrency token")]
    public async Task PlainWrite()
    {
        _plainRow.Title = NextTitle();
        _plainRow.Version++;
        await _plain.SaveChangesAsync();
    }

    [Benchmark(Description = "plain EF Core in an explicit transaction")]
    public async Task PlainWriteInTransaction()
    {
        await using var transaction = await _plain.Database.BeginTransactionAsync();
        _plainRow.Title = NextTitle();
        _plainRow.Version++;
        await _plain.SaveChangesAsync();
        await transaction.CommitAsync();
    }

    [Benchmark(Description = "SharedEntities: scope, write, SaveChangesSharedAsync")]
    public async Task SharedWrite()
    {
        await using FreshScope scope = _coherence.BeginScope();
        _sharedRow.Title = NextTitle();
        await _shared.SaveChangesSharedAsync();
    }

    [Benchmark(Description = "SharedEntities, PublishInBackground: scope, write, SaveChangesSharedAsync")]
    public async Task SharedWritePublishingInBackground()
    {
        await using FreshScope scope = _backgroundCoherence.BeginScope();
        _backgroundRow.Title = NextTitle();
        await _background.SaveChangesSharedAsync();
    }

    [Benchmark(Description = "SharedEntities: scope, checked read, write, SaveChangesSharedAsync")]
    public async Task SharedReadThenWrite()
    {
        await using FreshScope scope = _coherence.BeginScope();
        _sharedRow.Title = _sharedRow.Title.Length > 40 ? NextTitle() : _sharedRow.Title + "+";
        await _shared.SaveChangesSharedAsync();
    }

    private async Task SetupAsync()
    {
        _postgres = new PostgresCluster();
        _memcached = new LocalMemcached();
        _store = new MemcachedStore(new MemcachedClientOptions { Servers = _memcached.Address });
        _coherence = new Coherence(_store);
        _backgroundCoherence = new Coherence(_store, new CoherenceOptions { PublishInBackground = true });
        _plain = new PlainContext(new DbContextOptionsBuilder<PlainContext>().UseNpgsql(_postgres.ConnectionString).Options);
        _shared = new SharedContext(new DbContextOptionsBuilder<SharedContext>().UseNpgsql(_postgres.ConnectionString).UseSharedEntities(_coherence).Options);
        _background = new SharedContext(new DbContextOptionsBuilder<SharedContext>().UseNpgsql(_postgres.ConnectionString).UseSharedEntities(_backgroundCoherence).Options);
        await _plain.GetService<IRelationalDatabaseCreator>().CreateTablesAsync();
        await _shared.GetService<IRelationalDatabaseCreator>().CreateTablesAsync();

        _plain.Rows.Add(new PlainRow { Id = 1, Version = 1, Title = "start" });
        await _plain.SaveChangesAsync();
        await using (_coherence.BeginScope())
        {
            _shared.Rows.Add(new SharedRow { Id = 1, Title = "start" });
            await _shared.SaveChangesSharedAsync();
        }

        await using (_backgroundCoherence.BeginScope())
        {
            _background.Rows.Add(new SharedRow { Id = 2, Title = "start" });
            await _background.SaveChangesSharedAsync();
        }

        _plainRow = await _plain.Rows.SingleAsync();
        _sharedRow = await _shared.Rows.SingleAsync(r => r.Id == 1);
        _backgroundRow = await _background.Rows.SingleAsync(r => r.Id == 2);
        await SharedReadThenWrite(); // the token is in memcached from here on

        long write = await RoundTrips.CountAsync(SharedWrite);
        long readThenWrite = await RoundTrips.CountAsync(SharedReadThenWrite);
        await SharedWritePublishingInBackground();
        await _backgroundCoherence.PublishedAsync();
        long background = await RoundTrips.CountAsync(async () =>
        {
            await SharedWritePublishingInBackground();
            await _backgroundCoherence.PublishedAsync();
        });
        Console.WriteLine($"// Memcached round trips per committed write: write={write} read-then-write={readThenWrite} " +
            $"publish-in-background={background} (its one publish round trip after the call returns)");
    }

    private string NextTitle() => "title " + (++_writes).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

[Table("plain_rows")]
public sealed class PlainRow
{
    public int Id { get; set; }

    [ConcurrencyCheck]
    public long Version { get; set; }

    public string Title { get; set; } = "";
}

[SharedEntity]
[Table("shared_rows")]
public partial class SharedRow
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }
}

public sealed class PlainContext(DbContextOptions<PlainContext> options) : DbContext(options)
{
    public DbSet<PlainRow> Rows => Set<PlainRow>();
}

public sealed class SharedContext(DbContextOptions<SharedContext> options) : DbContext(options)
{
    public DbSet<SharedRow> Rows => Set<SharedRow>();
}
