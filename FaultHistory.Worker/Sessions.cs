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
/// What a process's sessions share: one ADO.NET mapping and one set of EF Core options for the whole process (the
/// entity cache serves a row only to the integration shape that stored it, so shapes must not change per session).
/// </summary>
internal sealed class SessionFactory
{
    private readonly WorkerSettings _settings;
    private readonly Coherence _coherence;
    private readonly DbEntityMapping _mapping = DbEntityMapping.For<Counter>();
    private readonly DbContextOptions<CounterContext>? _efOptions;

    public SessionFactory(WorkerSettings settings, Coherence coherence)
    {
        _settings = settings;
        _coherence = coherence;
        if (settings.Path != WritePaths.AdoNet)
        {
            var options = new DbContextOptionsBuilder<CounterContext>();
            DbDialect dialect;
            if (Session.IsPostgres(settings, out string database))
            {
                options.UseNpgsql(database);
                dialect = DbDialect.PostgreSql;
            }
            else
            {
                options.UseSqlite(Session.SqliteConnectionString(database));
                dialect = SqliteDialect.Instance;
            }

            _efOptions = options.UseSharedEntities(coherence, dialect).Options;
        }
    }

    /// <summary>
    /// A long-lived session (flow 0: the counters loaded once and kept, checked in each scope), or a short-lived one
    /// for one operation (the other flows: the counter read by key inside the operation's scope).
    /// </summary>
    public async Task<Session> OpenAsync(int flow)
    {
        bool shortLived = flow > 0;
        Session session = _settings.Path == WritePaths.AdoNet
            ? new AdoNetSession(_coherence, _settings, _mapping, shortLived)
            : new EfSession(_coherence, _settings, _efOptions!, shortLived, byFind: flow % 2 == 1);
        if (shortLived)
        {
            return session; // opens its connection at its read
        }

        try
        {
            for (int id = 1; id <= _settings.Keys; id++)
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
}

/// <summary>
/// A connection (or context) and the counters read through it. Long-lived: kept for as long as it works, the way an
/// application keeps its objects (after an unexpected error, a database restart, the flow opens a new one).
/// Short-lived: one operation, as a web request does it: a new connection or context, the counter read by key in the
/// operation's scope (the entity cache's path), then disposed.
/// </summary>
internal abstract class Session(Coherence coherence, bool shortLived) : IAsyncDisposable
{
    protected Coherence Coherence { get; } = coherence;

    public bool ShortLived => shortLived;

    /// <summary>Counters by id.</summary>
    public Dictionary<int, Counter> Counters { get; } = [];

    /// <summary>
    /// The counter the current scope reads: a long-lived session's copy (checked when touched), or, in a short-lived
    /// one, the counter read by key now.
    /// </summary>
    public async Task<Counter> ReadAsync(int id)
    {
        if (!shortLived)
        {
            return Counters[id];
        }

        Counter counter = await LoadAsync(id) ?? throw new InvalidOperationException($"No counter {id}.");
        Counters[id] = counter;
        return counter;
    }

    /// <summary>Writes the counter changed in <paramref name="scope"/> on this session's path.</summary>
    public abstract Task SaveAsync(FreshScope scope);

    /// <summary>
    /// The writes a save would make besides counter <paramref name="id"/>'s (EF Core writes every modified entity it
    /// tracks), as (new version, value).
    /// </summary>
    public virtual List<PendingCommit> Bystanders(int id) => [];

    public virtual ValueTask DisposeAsync()
    {
        foreach (Counter counter in Counters.Values)
        {
            Coherence.Detach(counter);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Reads counter <paramref name="id"/> by key (outside a scope when a long-lived session opens).</summary>
    internal abstract Task<Counter?> LoadAsync(int id);

    internal static bool IsPostgres(WorkerSettings settings, out string database)
    {
        int colon = settings.Database.IndexOf(':', StringComparison.Ordinal);
        database = settings.Database[(colon + 1)..];
        if (!settings.Database.StartsWith("postgres:", StringComparison.Ordinal))
        {
            return false;
        }

        // The database's audit of the counters names the process that changed a row (FaultHistory.Tests, RunSetups).
        database = new NpgsqlConnectionStringBuilder(database) { ApplicationName = $"worker{settings.Worker}.{settings.Generation}" }.ToString();
        return true;
    }

    internal static string SqliteConnectionString(string file) => $"Data Source={file};Default Timeout=30";
}

/// <summary><c>DbEntityLoader</c> on a plain connection; a scope's <c>CommitAsync</c> writes.</summary>
internal sealed class AdoNetSession : Session
{
    private readonly DbConnection _connection;
    private readonly DbEntityLoader _loader;

    public AdoNetSession(Coherence coherence, WorkerSettings settings, DbEntityMapping mapping, bool shortLived)
        : base(coherence, shortLived)
    {
        bool postgres = IsPostgres(settings, out string database);
        _connection = postgres ? new NpgsqlConnection(database) : new SqliteConnection(SqliteConnectionString(database));
        _loader = new DbEntityLoader(coherence, _connection, postgres ? DbDialect.PostgreSql : SqliteDialect.Instance, mapping);
    }

    public override Task SaveAsync(FreshScope scope) => scope.CommitAsync();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _connection.DisposeAsync();
    }

    internal override async Task<Counter?> LoadAsync(int id)
    {
        if (_connection.State != System.Data.ConnectionState.Open)
        {
            await _connection.OpenAsync();
        }

        return await _loader.FindAsync<Counter>(id);
    }
}

/// <summary>A <see cref="CounterContext"/> with <c>UseSharedEntities</c>; saves with or without an application transaction.</summary>
internal sealed class EfSession : Session
{
    private readonly CounterContext _context;
    private readonly bool _inTransaction;
    private readonly bool _byFind;

    public EfSession(Coherence coherence, WorkerSettings settings, DbContextOptions<CounterContext> options, bool shortLived, bool byFind)
        : base(coherence, shortLived)
    {
        _context = new CounterContext(options);
        _inTransaction = settings.Path == WritePaths.EfTransaction;
        _byFind = byFind;
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
    public override List<PendingCommit> Bystanders(int id)
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

    internal override Task<Counter?> LoadAsync(int id) => ReadByKeyAsync(id);

    /// <summary>
    /// The EF Core read by key of the short-lived flows: the entity cache's path (<c>FindSharedAsync</c>: served when
    /// the store vouches for the cached version, else one query) in half the flows, an ordinary query (<c>Where</c>),
    /// whose rows count as checked in the scope that read them and fill the cache, in the others.
    /// </summary>
    private Task<Counter?> ReadByKeyAsync(int id) =>
        _byFind ? _context.Counters.FindSharedAsync(id).AsTask() : _context.Counters.Where(c => c.Id == id).SingleOrDefaultAsync();
}
