using MemcachedEfCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SharedEntities;
using SharedEntities.EntityFrameworkCore;

// Tokens in memcached, rows in PostgreSQL through EF Core (whose dialect is built in): renames sheet 1 in a scope.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: MemcachedEfCore <memcached servers> <PostgreSQL connection string>");
    return 2;
}

var services = new ServiceCollection();
services.AddSharedEntities(o => o.OutsideScopeReads = OutsideScopeReads.Throw).UseMemcached(args[0]);
services.AddDbContext<SheetsContext>((provider, options) => options.UseNpgsql(args[1]).UseSharedEntities(provider));
await using ServiceProvider root = services.BuildServiceProvider(validateScopes: true);

await using AsyncServiceScope request = root.CreateAsyncScope();
var db = request.ServiceProvider.GetRequiredService<SheetsContext>();
await using (root.GetRequiredService<Coherence>().BeginScope())
{
    Sheet sheet = await db.Sheets.SingleAsync(s => s.Id == 1);
    sheet.Title += " (reviewed)";
    await db.SaveChangesSharedAsync(); // version-guarded UPDATE, dirty token, COMMIT, publish
    Console.WriteLine($"sheet 1: {sheet.Title}, version {sheet.Version}");
}

return 0;
