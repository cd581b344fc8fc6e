using MemcachedAdoNet;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using SharedEntities;
using SharedEntities.AdoNet;

// Tokens in memcached, rows in PostgreSQL through ADO.NET: renames sheet 1 in a scope and commits it.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: MemcachedAdoNet <memcached servers> <PostgreSQL connection string>");
    return 2;
}

var services = new ServiceCollection();
services.AddSharedEntities(o => o.OutsideScopeReads = OutsideScopeReads.Throw).UseMemcached(args[0]);
await using ServiceProvider provider = services.BuildServiceProvider(validateScopes: true);
var coherence = provider.GetRequiredService<Coherence>();

await using var connection = new NpgsqlConnection(args[1]);
var loader = new DbEntityLoader(coherence, connection, DbDialect.PostgreSql, DbEntityMapping.For<Sheet>(table: "sheets"));
await using FreshScope scope = coherence.BeginScope();
if (await loader.FindAsync<Sheet>(1) is not { } sheet)
{
    Console.Error.WriteLine("no sheet 1");
    return 1;
}

sheet.Title += " (reviewed)";
await scope.CommitAsync(); // UPDATE … WHERE Version = @v, dirty token, COMMIT, publish
Console.WriteLine($"sheet 1: {sheet.Title}, version {sheet.Version}");
return 0;
