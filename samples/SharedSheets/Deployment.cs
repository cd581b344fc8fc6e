using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Npgsql;
using SharedEntities;
using SharedEntities.EntityFrameworkCore;
using SharedEntities.Memcached;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedSheets;

/// <summary>
/// Where the sheets and the tokens live, as every process of one run sees it. The coordinator creates it (a temp
/// folder with a SQLite file, or a schema of its own in PostgreSQL) and hands it to its workers in their environment.
/// </summary>
internal sealed record Deployment(
    string DataKind, string Data, string StoreKind, string Store, string KeyPrefix, bool MemcachedTls = false, string? MemcachedCa = null, string? MemcachedUser = null)
{
    private static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Creates the run's database and store locations under <paramref name="folder"/>.</summary>
    public static Deployment Create(SampleOptions options, string folder)
    {
        string prefix = "sheets" + Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.NextInt64()))[..8] + ":";
        string sqliteFile = Path.Combine(folder, "sheets.db");
        string sqlite = new SqliteConnectionStringBuilder { DataSource = sqliteFile, DefaultTimeout = (int)BusyTimeout.TotalSeconds }.ToString();
        (string dataKind, string data) = options.Postgres is { } postgres
            ? ("postgres", new NpgsqlConnectionStringBuilder(postgres) { SearchPath = prefix.TrimEnd(':') }.ToString())
            : ("sqlite", sqlite);
        (string storeKind, string store) = options.Memcached is { } servers
            ? ("memcached", servers)
            : ("sqlite", dataKind == "sqlite" ? sqlite : new SqliteConnectionStringBuilder { DataSource = Path.Combine(folder, "tokens.db"), DefaultTimeout = (int)BusyTimeout.TotalSeconds }.ToString());
        return new Deployment(
            dataKind, data, storeKind, store, prefix, options.MemcachedTls, options.MemcachedCa is { } ca ? Path.GetFullPath(ca) : null, options.MemcachedUser);
    }

    /// <summary>What the narrative calls it.</summary>
    public string Describe() =>
        (DataKind == "sqlite" ? "a SQLite file" : "PostgreSQL") + " for the sheets, "
        + (StoreKind == "memcached" ? $"memcached at {Store}{DescribeSecurity()}" : DataKind == "sqlite" ? "the embedded store (a table of the same file)" : "the embedded store (a SQLite file)")
        + " for the tokens";

    public Coherence CreateCoherence()
    {
        ISharedStore store = StoreKind == "memcached"
            ? new MemcachedStore(MemcachedOptions(Store, MemcachedTls, MemcachedCa, MemcachedUser))
            : new SqliteSharedStore(Store, busyTimeout: BusyTimeout);
        return new Coherence(store, new CoherenceOptions { KeyPrefix = KeyPrefix, OutsideScopeReads = OutsideScopeReads.Throw });
    }

    public SheetsContext CreateContext(Coherence coherence)
    {
        var builder = new DbContextOptionsBuilder<SheetsContext>();
        return DataKind == "postgres"
            ? new SheetsContext(builder.UseNpgsql(Data).UseSharedEntities(coherence).Options) // PostgreSQL's dialect is built in
            : new SheetsContext(builder.UseSqlite(Data).UseSharedEntities(coherence, SqliteDialect.Instance).Options);
    }

    // The password comes from each process's environment (the workers inherit it), never from the deployment's JSON.
    /// <summary>The memcached client's options of a run (a <see cref="UsageException"/> if the CA file holds no certificate).</summary>
    public static MemcachedClientOptions MemcachedOptions(string servers, bool tls, string? caFile, string? user)
    {
        var options = new MemcachedClientOptions { Servers = servers };
        if (tls)
        {
            options.Tls = new MemcachedTlsOptions();
            if (caFile is { } ca)
            {
                var roots = new X509Certificate2Collection();
                try
                {
                    roots.ImportFromPemFile(ca);
                }
                catch (CryptographicException ex)
                {
                    throw new UsageException($"--memcached-ca: '{ca}' holds no PEM certificate: {ex.Message}");
                }

                options.Tls.TrustedCertificates = roots.Count > 0 ? roots : throw new UsageException($"--memcached-ca: '{ca}' holds no PEM certificate.");
            }
        }

        if (user is not null)
        {
            options.Username = user;
            options.Password = Environment.GetEnvironmentVariable(SampleOptions.MemcachedPasswordVariable)
                ?? throw new UsageException($"--memcached-user needs the password in the environment variable {SampleOptions.MemcachedPasswordVariable}.");
        }

        return options;
    }

    private string DescribeSecurity() =>
        (MemcachedTls, MemcachedUser is not null) switch
        {
            (true, true) => " (TLS, authenticated)",
            (true, false) => " (TLS)",
            (false, true) => " (authenticated, no TLS)",
            _ => "",
        };

    /// <summary>Creates the sheets table (in the run's own schema on PostgreSQL).</summary>
    public async Task CreateSchemaAsync(SheetsContext db)
    {
        if (DataKind == "postgres")
        {
            string createSchema = "CREATE SCHEMA \"" + Schema + "\""; // a generated name (letters and hex digits), not input
#pragma warning disable EF1003
            await db.Database.ExecuteSqlRawAsync(createSchema);
#pragma warning restore EF1003
        }

        else
        {
            // WAL (kept in the file): readers do not block the writer, and a transaction's first read fixes its snapshot.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL");
        }

        await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync();
    }

    /// <summary>Removes the run's schema from PostgreSQL (the temp folder goes with the coordinator).</summary>
    public async Task DropSchemaAsync()
    {
        if (DataKind != "postgres")
        {
            return;
        }

        await using var connection = new NpgsqlConnection(Data);
        await connection.OpenAsync();
        await using NpgsqlCommand drop = connection.CreateCommand();
        drop.CommandText = $"DROP SCHEMA IF EXISTS \"{Schema}\" CASCADE";
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>The counter's value in the database, read directly (no entity, no check).</summary>
    public static async Task<long> ReadEditsAsync(SheetsContext db, int id) =>
        await db.Database.SqlQuery<long>($"SELECT \"Edits\" AS \"Value\" FROM \"Sheets\" WHERE \"Id\" = {id}").SingleAsync();

    /// <summary>The seed protocol's unguarded write-back, for <c>--break-guarantee</c>: no version, no token.</summary>
    public static async Task WriteEditsUnguardedAsync(SheetsContext db, int id, long edits) =>
        await db.Database.ExecuteSqlAsync($"UPDATE \"Sheets\" SET \"Edits\" = {edits} WHERE \"Id\" = {id}");

    /// <summary>
    /// The environment variable that hands the deployment to a worker. Not the command line: connection strings may
    /// hold passwords, and any user of the machine can read another process's arguments.
    /// </summary>
    public const string EnvironmentVariable = "SHAREDSHEETS_DEPLOYMENT";

    public string ToJson() => JsonSerializer.Serialize(this);

    public static Deployment FromEnvironment() =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } json
            ? JsonSerializer.Deserialize<Deployment>(json) ?? throw new UsageException($"{EnvironmentVariable} is empty.")
            : throw new UsageException($"A worker needs {EnvironmentVariable}; it is started by the sample itself.");

    private string Schema => KeyPrefix.TrimEnd(':');
}
