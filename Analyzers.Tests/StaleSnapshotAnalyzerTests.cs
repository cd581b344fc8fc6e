using Microsoft.CodeAnalysis.Testing;
using SharedEntities.Analyzers.Tests.Infrastructure;
using static SharedEntities.Analyzers.Tests.Infrastructure.Verifier;

namespace SharedEntities.Analyzers.Tests;

/// <summary>
/// SE0101: a refresh after a read inside a REPEATABLE READ / SERIALIZABLE / SNAPSHOT transaction. Reads in these
/// sources sit inside scopes so that only SE0101 is under test.
/// </summary>
public class StaleSnapshotAnalyzerTests
{
    private const string Data = """
        using System.Data;
        using System.Data.Common;
        using System.Transactions;
        using Microsoft.EntityFrameworkCore;
        using IsolationLevel = System.Data.IsolationLevel;

        """;

    private static Task Verify(string code, params DiagnosticResult[] expected)
        => AnalyzeAsync<StaleSnapshotAnalyzer>(Sources.Usings + Data + Sources.Sheet + Sources.EfCore + code, expected);

    /// <summary>The Django story of docs/diagnostics/SE0101.md translated to EF Core: the reload inside the open snapshot sees the old row.</summary>
    [Fact]
    public Task Django_recalc_shape_in_EF_Core_is_reported() => Verify("""
        class SheetController
        {
            public async Task<string> RecalculateAsync(AppDb db, Coherence coherence, int sheetId)
            {
                await using var scope = coherence.BeginScope();
                var recalcStart = DateTime.UtcNow;
                await using var transaction = await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead);
                var sheet = (await db.Sheets.FindAsync(sheetId))!;
                sheet.Recalculate();   // may take a while

                // check if another request has come in and changed LastModified
                await {|SE0101:db.Entry(sheet).ReloadAsync()|};
                if (sheet.LastModified > recalcStart)
                {
                    return "recalc aborted";
                }

                await transaction.CommitAsync();
                await scope.CommitAsync();
                return sheet.Title;
            }
        }
        """);

    /// <summary>The seed's own fix: end the transaction first, then re-read. Not reported.</summary>
    [Fact]
    public Task Django_fixed_form_commits_first_and_is_not_reported() => Verify("""
        class SheetController
        {
            public async Task<string> RecalculateAsync(AppDb db, Coherence coherence, int sheetId)
            {
                await using var scope = coherence.BeginScope();
                var recalcStart = DateTime.UtcNow;
                await using var transaction = await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead);
                var sheet = (await db.Sheets.FindAsync(sheetId))!;
                sheet.Recalculate();
                await transaction.CommitAsync();   // end the snapshot: the reload sees commits made meanwhile

                await db.Entry(sheet).ReloadAsync();
                await scope.CheckAsync();
                if (sheet.LastModified > recalcStart)
                {
                    return "recalc aborted";
                }

                await scope.CommitAsync();
                return sheet.Title;
            }
        }
        """);

    [Fact]
    public Task The_runtime_checks_inside_the_snapshot_are_reported() => Verify("""
        class C
        {
            async Task M(AppDb db, Coherence coherence, FreshScope scope, int id)
            {
                using var transaction = db.Database.BeginTransaction(IsolationLevel.Serializable);
                _ = db.Sheets.Find(id);
                await {|SE0101:scope.CheckAsync()|};
                {|SE0101:scope.Check()|};
                using var inner = {|SE0101:coherence.BeginScope()|};
                await {|SE0101:coherence.RunInScopeAsync((s, ct) => Task.CompletedTask)|};
                transaction.Commit();
                scope.Check();
            }
        }
        """);

    [Fact]
    public Task The_first_read_of_a_shared_property_checks_and_is_reported() => Verify("""
        class C
        {
            [RequiresFreshScope]
            string M(AppDb db, int id, int otherId)
            {
                using var transaction = db.Database.BeginTransaction(IsolationLevel.Snapshot);
                var sheet = db.Sheets.Find(id)!;
                var title = {|SE0101:sheet.Title|};
                var again = sheet.LastModified;   // already checked in this transaction
                var other = db.Sheets.Where(s => s.Id == otherId).ToList();   // another row, not a re-query
                transaction.Rollback();
                return title + again + other.Count + sheet.Cells;
            }
        }
        """);

    [Fact]
    public Task A_requery_of_the_same_entity_set_is_reported() => Verify("""
        class C
        {
            async Task<bool> M(AppDb db, int id, DateTime started)
            {
                await using var transaction = await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead);
                var count = db.Sheets.Count();
                var sheet = db.Sheets.Find(id)!;
                var inDb = await {|SE0101:db.Sheets.Where(s => s.Id == id).FirstAsync()|};
                foreach (var row in {|SE0101:db.Sheets.Where(s => s.Id == id)|})
                {
                }

                return count > 0 && inDb.Id == sheet.Id;
            }
        }
        """);

    [Fact]
    public Task A_refresh_before_any_read_is_not_reported() => Verify("""
        class C
        {
            async Task M(AppDb db, Coherence coherence, int id)
            {
                await using var scope = coherence.BeginScope();
                await using var transaction = await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead);
                await scope.CheckAsync();
                var sheet = await db.Sheets.FindAsync(id);
                await transaction.CommitAsync();
            }
        }
        """);

    [Fact]
    public Task Read_committed_and_unknown_levels_are_not_reported() => Verify("""
        class C
        {
            void M(AppDb db, FreshScope scope, int id, IsolationLevel level)
            {
                using (var transaction = db.Database.BeginTransaction(IsolationLevel.ReadCommitted))
                {
                    _ = db.Sheets.Find(id);
                    scope.Check();
                }

                using (var transaction = db.Database.BeginTransaction(level))
                {
                    _ = db.Sheets.Find(id);
                    scope.Check();
                }
            }
        }
        """);

    [Fact]
    public Task The_transaction_ends_with_its_using_block_rollback_dispose_or_the_facade() => Verify("""
        class C
        {
            void M(AppDb db, FreshScope scope, int id)
            {
                using (db.Database.BeginTransaction(IsolationLevel.RepeatableRead))
                {
                    _ = db.Sheets.Find(id);
                }

                scope.Check();

                var transaction = db.Database.BeginTransaction(IsolationLevel.RepeatableRead);
                _ = db.Sheets.Find(id);
                transaction.Dispose();
                scope.Check();

                db.Database.BeginTransaction(IsolationLevel.RepeatableRead);
                _ = db.Sheets.Find(id);
                {|SE0101:scope.Check()|};
                db.Database.RollbackTransaction();
                scope.Check();
            }
        }
        """);

    [Fact]
    public Task A_read_before_the_transaction_begins_does_not_count() => Verify("""
        class C
        {
            void M(AppDb db, FreshScope scope, int id)
            {
                _ = db.Sheets.Find(id);
                using var transaction = db.Database.BeginTransaction(IsolationLevel.RepeatableRead);
                scope.Check();
            }
        }
        """);

    [Fact]
    public Task AdoNet_transactions_and_commands() => Verify("""
        class C
        {
            async Task M(DbConnection connection, FreshScope scope)
            {
                await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead);
                using var command = connection.CreateCommand();
                command.CommandText = "select title from sheet";
                _ = await command.ExecuteScalarAsync();
                await {|SE0101:scope.CheckAsync()|};
                await transaction.CommitAsync();
                await scope.CheckAsync();
            }

            void Sync(IDbConnection connection, FreshScope scope)
            {
                using var transaction = connection.BeginTransaction(IsolationLevel.Serializable);
                using var command = connection.CreateCommand();
                _ = command.ExecuteReader();
                {|SE0101:scope.Check()|};
            }
        }
        """);

    [Fact]
    public Task TransactionScope_with_a_snapshot_level_or_the_serializable_default() => Verify("""
        class C
        {
            void Options(AppDb db, FreshScope scope, int id)
            {
                using (var tx = new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = System.Transactions.IsolationLevel.RepeatableRead }))
                {
                    _ = db.Sheets.Find(id);
                    {|SE0101:scope.Check()|};
                    tx.Complete();
                }

                scope.Check();
            }

            void Default(AppDb db, FreshScope scope, int id)
            {
                using var tx = new TransactionScope();
                _ = db.Sheets.Find(id);
                {|SE0101:scope.Check()|};
            }

            void NotSnapshot(AppDb db, FreshScope scope, int id)
            {
                using (new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = System.Transactions.IsolationLevel.ReadCommitted }))
                {
                    _ = db.Sheets.Find(id);
                    scope.Check();
                }

                using (new TransactionScope(TransactionScopeOption.Suppress))
                {
                    _ = db.Sheets.Find(id);
                    scope.Check();
                }
            }
        }
        """);

    [Fact]
    public Task Lambda_bodies_are_judged_on_their_own() => Verify("""
        class C
        {
            async Task M(AppDb db, Coherence coherence, int id)
            {
                using var transaction = db.Database.BeginTransaction(IsolationLevel.RepeatableRead);
                _ = db.Sheets.Find(id);
                Func<FreshScope, Task> later = s => s.CheckAsync();   // runs who knows when: not judged here
                transaction.Commit();

                await coherence.RunInScopeAsync(async (scope, ct) =>
                {
                    await using var inner = await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
                    var sheet = await db.Sheets.FindAsync(id);
                    await {|SE0101:scope.CheckAsync(ct)|};
                });
            }
        }
        """);

    [Fact]
    public Task Nothing_is_reported_without_EF_Core_or_transactions() => AnalyzeAsync<StaleSnapshotAnalyzer>(Sources.Usings + Sources.Sheet + """
        class C
        {
            async Task M(Coherence coherence, Sheet sheet)
            {
                await using var scope = coherence.BeginScope();
                _ = sheet.Title;
                await scope.CheckAsync();
            }
        }
        """);
}
