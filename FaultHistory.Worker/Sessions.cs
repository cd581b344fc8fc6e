using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using SharedEntities.AdoNet;
using SharedEntities.EntityFrameworkCore;
using SharedEntities.Sqlite;

namespace SharedEntities.FaultHistory;

/// <summary>A hot counter: every worker reads it and adds one to it.</summary>
[SharedEntity]
public partial class Counter
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial long Value { get; set; }
}

/// <summary>The workers' EF Core model: the <c>Counter</c> table, as the ADO.NET path maps it too.</summary>
public sealed class CounterContext(DbContextOptions<CounterContext> options) : DbContext(options)
{
    public DbSet<Counter> Counters => Set<Counter>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<Counter>(counter =>
        {
            counter.ToTable("Counter");
            counter.Property(c => c.Id).ValueGeneratedNever();
        });
}

/// <summary>
/// A connection (or context) with the counters loaded through it, kept for as long as it works, the way an application
/// keeps its objects; after an unexpected error (a database restart) the worker opens a new one.
/// </summary>
internal abstract class Session(Coherence coherence) : IAsyncDisposable
{
    protected Coherence Coherence { get; } = coherence;

    /// <summary>Counters by id.</summary>
    public Dictionary<int, Counter> Counters { get; } = [];

    public static async Task<Session> OpenAsync(WorkerSettings settings, Coherence coherence)
    {
        Session session = settings.Path == WritePaths.AdoNet ? new AdoNetSession(coherence, settings) : new EfSession(coherence, settings);
        try
        {
            for (int id = 1; id <= settings.Keys; id++)
            {
                session.Counters[id] = await session.LoadAsync(id) ?? throw new InvalidOperationException($"No counter {id}.");
            }
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }

        return session;
    }

    /// <summary>Writes the counter changed in <paramref name="scope"/> on this session's path.</summary>
    public abstract Task SaveAsync(FreshScope scope);

    public virtual ValueTask DisposeAsync()
    {
        foreach (Counter counter in Counters.Values)
        {
            Coherence.Detach(counter);
        }

        return ValueTask.CompletedTask;
    }

    protected abstract Task<Counter?> LoadAsync(int id);

    protected static bool IsPostgres(WorkerSettings settings, out string database)
    {
        int colon = settings.Database.IndexOf(':', StringComparison.Ordinal);
        database = settings.Database[(colon + 1)..];
        return settings.Database.StartsWith("postgres:", StringComparison.Ordinal);
    }

    protected static string SqliteConnectionString(string file) => $"Data Source={file};Default Timeout=30";
}

/// <summary><c>DbEntityLoader</c> on a plain connection; a scope's <c>CommitAsync</c> writes.</summary>
internal sealed class AdoNetSession : Session
{
    private readonly DbConnection _connection;
    private readonly DbEntityLoader _loader;

    public AdoNetSession(Coherence coherence, WorkerSettings settings)
        : base(coherence)
    {
        bool postgres = IsPostgres(settings, out string database);
        _connection = postgres ? new NpgsqlConnection(database) : new SqliteConnection(SqliteConnectionString(database));
        _loader = new DbEntityLoader(coherence, _connection, postgres ? DbDialect.PostgreSql : SqliteDialect.Instance, DbEntityMapping.For<Counter>());
    }

    public override Task SaveAsync(FreshScope scope) => scope.CommitAsync();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _connection.DisposeAsync();
    }

    protected override async Task<Counter?> LoadAsync(int id)
    {
        if (_connection.State != System.Data.ConnectionState.Open)
        {
            await _connection.OpenAsync();
        }

        return await _loader.FindAsync<Counter>(id);
    }
}

/// <summary>A long-lived <see cref="CounterContext"/> with <c>UseSharedEntities</c>; saves with or without an application transaction.</summary>
internal sealed class EfSession : Session
{
    private readonly CounterContext _context;
    private readonly bool _inTransaction;

    public EfSession(Coherence coherence, WorkerSettings settings)
        : base(coherence)
    {
        var options = new DbContextOptionsBuilder<CounterContext>();
        DbDialect dialect;
        if (IsPostgres(settings, out string database))
        {
            options.UseNpgsql(database);
            dialect = DbDialect.PostgreSql;
        }
        else
        {
            options.UseSqlite(SqliteConnectionString(database));
            dialect = SqliteDialect.Instance;
        }

        _context = new CounterContext(options.UseSharedEntities(coherence, dialect).Options);
        _inTransaction = settings.Path == WritePaths.EfTransaction;
    }

    public override async Task SaveAsync(FreshScope scope)
    {
        if (!_inTransaction)
        {
            await _context.SaveChangesSharedAsync(); // one UPDATE, committing as it runs
            return;
        }

        await using IDbContextTransaction transaction = await _context.Database.BeginTransactionAsync();
        await _context.SaveChangesSharedAsync();
        await transaction.CommitAsync();
    }

    /// <summary>
    /// The writes EF Core would make besides counter <paramref name="id"/>'s: counters whose earlier save was refused
    /// and that have not been checked since (the change tracker still holds the refused values), as (new version, value).
    /// </summary>
    public List<PendingCommit> Bystanders(int id)
    {
        _context.ChangeTracker.DetectChanges();
        return [.. _context.ChangeTracker.Entries<Counter>()
            .Where(e => e.State != EntityState.Unchanged && e.Entity.Id != id)
            .Select(e => new PendingCommit(e.Entity.Id, e.Entity.Version + 1, (long)e.Property(nameof(Counter.Value)).CurrentValue!))]; // the field: no check
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _context.DisposeAsync();
    }

    protected override Task<Counter?> LoadAsync(int id) => _context.Counters.SingleOrDefaultAsync(c => c.Id == id);
}
