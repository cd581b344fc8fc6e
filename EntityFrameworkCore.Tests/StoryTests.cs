using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.Extensions.DependencyInjection;
using SharedEntities.AdoNet;
using SharedEntities.DependencyInjection;
using SharedEntities.Protocol;
using SharedEntities.Sqlite;
using SharedEntities.Stores;
using SharedEntities.Tests.Postgres;

namespace SharedEntities.EntityFrameworkCore.Tests;

/// <summary>
/// The seed and Django stories through EF Core: two "processes" (each its own runtime and DbContext) on one
/// database and one embedded store. Run on SQLite (the store in the data file) and on PostgreSQL.
/// </summary>
public abstract class StoryTests : IDisposable
{
    private readonly Disposables _owned = new();

    protected abstract SqliteSharedStore Store { get; }

    public void Dispose()
    {
        _owned.Dispose();
        DisposeDatabase();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void The_model_maps_shared_properties_to_their_fields_and_the_version_as_a_concurrency_token()
    {
        Proc a = NewProcess();
        IEntityType sheet = a.Context.Model.FindEntityType(typeof(Sheet))!;
        IProperty title = sheet.FindProperty(nameof(Sheet.Title))!;
        Assert.Equal("__shared_Title", title.FieldInfo!.Name);
        Assert.Equal(PropertyAccessMode.Field, title.GetPropertyAccessMode());
        Assert.True(sheet.FindProperty(nameof(Sheet.Version))!.IsConcurrencyToken);
    }

    [Fact]
    public async Task Seed_story_a_rename_is_seen_by_the_next_scope_and_a_delete_is_noticed()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB;
        await using (b.Coherence.BeginScope())
        {
            inB = b.Context.Sheets.Single(s => s.Id == 1);
            Assert.Equal("Q1", inB.Title);
        }

        await using (a.Coherence.BeginScope())
        {
            Sheet inA = await a.Context.Sheets.SingleAsync(s => s.Id == 1);
            inA.Title = "Q2";
            await a.Context.SaveChangesSharedAsync();
            Assert.Equal(2, inA.Version);
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
            Assert.Equal(2, inB.Version);
        }

        Assert.False(b.Context.ChangeTracker.HasChanges()); // the reload is not a change to save

        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Remove(a.Context.Sheets.Single(s => s.Id == 1));
            a.Context.SaveChangesShared();
        }

        Assert.Equal(SharedToken.Deleted(3).Value, Store.Peek(a.Coherence.StoreKeyOf(inB))); // the delete took version 3
        await using (b.Coherence.BeginScope())
        {
            Assert.Throws<EntityDeletedException>(() => inB.Title);
        }
    }

    [Fact]
    public async Task Django_story_a_long_recalculation_is_refused_instead_of_overwriting()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");

        FreshScope recalculation = b.Coherence.BeginScope();
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
        Assert.Equal("Q1", inB.Title);

        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
            await a.Context.SaveChangesSharedAsync();
        }

        inB.Title = "recalculated by B";
        StaleEntityException refused = await Assert.ThrowsAsync<StaleEntityException>(() => b.Context.SaveChangesSharedAsync());
        Assert.Equal("Sheet", refused.EntityName);
        Assert.Equal(1, refused.Key);
        Assert.Equal(1, refused.LocalVersion);
        Assert.IsType<DbUpdateConcurrencyException>(refused.InnerException);
        Assert.Equal(1, inB.Version); // the version SaveChanges tried is given back
        await recalculation.DisposeAsync();

        Assert.Equal(("from A", 2L), ReadRow(1));

        // The retry: a new scope reloads B's copy (discarding the refused write), and B's next save goes through.
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("from A", inB.Title);
            Assert.False(b.Context.ChangeTracker.HasChanges());
            inB.Title = "recalculated again by B";
            await b.Context.SaveChangesSharedAsync();
        }

        Assert.Equal(("recalculated again by B", 3L), ReadRow(1));
    }

    [Fact]
    public async Task A_delete_based_on_an_old_copy_is_refused_too()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
            await a.Context.SaveChangesSharedAsync();
        }

        b.Context.Sheets.Remove(inB);
        StaleEntityException refused = Assert.Throws<StaleEntityException>(() => b.Context.SaveChangesShared());
        Assert.Contains("delete", refused.Message, StringComparison.Ordinal);
        Assert.Equal(("from A", 2L), ReadRow(1));
    }

    [Fact]
    public async Task Django_story_inside_a_repeatable_read_transaction_gets_the_stale_snapshot_exception()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);

        using (BeginSnapshot(b.Context))
        {
            await using (a.Coherence.BeginScope())
            {
                a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
                await a.Context.SaveChangesSharedAsync();
            }

            await using (b.Coherence.BeginScope())
            {
                StaleSnapshotException stale = Assert.Throws<StaleSnapshotException>(() => inB.Title);
                Assert.Equal("Sheet", stale.EntityName);
                Assert.Contains("Commit or roll back", stale.Message, StringComparison.Ordinal);
            }
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("from A", inB.Title);
        }
    }

    [Fact]
    public async Task A_rollback_publishes_nothing_and_the_writer_reloads_its_copy()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = WarmUp(b);
        string key = b.Coherence.StoreKeyOf(inB);
        long? before = Store.Peek(key);
        Assert.Equal(SharedToken.Clean(1).Value, before);

        Sheet inA = a.Context.Sheets.Single(s => s.Id == 1);
        await using (a.Coherence.BeginScope())
        {
            using (var transaction = a.Context.Database.BeginTransaction())
            {
                inA.Title = "never committed";
                await a.Context.SaveChangesSharedAsync();
                Assert.Equal(2, inA.Version);
                transaction.Rollback();
            }

            Assert.Equal(before, Store.Peek(key));
            Assert.Equal(1, inA.Version);
        }

        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inA.Title); // reloaded: the rolled-back value is gone
            Assert.False(a.Context.ChangeTracker.HasChanges());
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q1", inB.Title);
        }

        Assert.Equal(("Q1", 1L), ReadRow(1));
    }

    [Fact]
    public async Task A_save_inside_an_application_transaction_is_published_only_after_its_commit()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Insert(a, 2, "other");
        Sheet inB = WarmUp(b);
        string key = b.Coherence.StoreKeyOf(inB);

        await using (a.Coherence.BeginScope())
        {
            await using (var transaction = await a.Context.Database.BeginTransactionAsync())
            {
                a.Context.Sheets.Single(s => s.Id == 1).Title = "Q2";
                await a.Context.SaveChangesSharedAsync();
                a.Context.Sheets.Single(s => s.Id == 2).Title = "other 2";
                await a.Context.SaveChangesSharedAsync();
                Assert.Equal(SharedToken.Clean(1).Value, Store.Peek(key));
                await transaction.CommitAsync();
            }
        }

        Assert.Equal(SharedToken.Clean(2).Value, Store.Peek(key));
        Assert.Equal(SharedToken.Clean(2).Value, Store.Peek(key.Replace(":1", ":2", StringComparison.Ordinal)));
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
        }
    }

    [Fact]
    public void A_synchronous_save_without_a_transaction_raises_and_publishes()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = WarmUp(b);
        using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 1).Title = "Q2";
            Assert.Equal(1, a.Context.SaveChanges());
        }

        Assert.Equal(SharedToken.Clean(2).Value, Store.Peek(b.Coherence.StoreKeyOf(inB)));
        using (b.Coherence.BeginScope())
        {
            Assert.Equal("Q2", inB.Title);
        }
    }

    [Fact]
    public async Task Outside_a_transaction_the_dirty_token_goes_up_after_the_update_has_the_row_lock_and_before_the_commit()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        string key = a.Coherence.StoreKeyOf(WarmUp(a));
        var observer = new UpdateObserver(() => [Store.Peek(key)], [key]);
        using var writer = NewCoherence(Store);
        using SheetContext context = NewContext(writer, observer);
        await using (writer.BeginScope())
        {
            context.Sheets.Single(s => s.Id == 1).Title = "Q2";
            Assert.Equal(1, await context.SaveChangesSharedAsync());
        }

        // Raised before the UPDATE, the dirty token could be evicted before the row is locked, and a lease filler
        // would then publish the old version as clean for a whole TTL. So: the UPDATE runs in a transaction, with the
        // token still clean(1); the dirty token is up when that transaction commits; clean(2) after.
        UpdateObserver.Seen update = Assert.Single(observer.Updates);
        Assert.Equal([SharedToken.Clean(1).Value], update.Tokens);
        Assert.True(update.InTransaction);
        Assert.Equal([SharedToken.Dirty(2).Value], Assert.Single(observer.Commits));
        Assert.Equal(SharedToken.Clean(2).Value, Store.Peek(key));
        Assert.Equal(("Q2", 2L), ReadRow(1));
        Assert.Equal(AutoTransactionBehavior.WhenNeeded, context.Database.AutoTransactionBehavior); // the setting is given back
    }

    [Fact]
    public void A_save_of_several_rows_outside_a_transaction_raises_in_EF_Cores_own_transaction_after_the_updates_and_publishes_after_it()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Insert(a, 2, "other");
        Sheet first = WarmUp(b);
        Sheet second;
        using (b.Coherence.BeginScope())
        {
            second = b.Context.Sheets.Single(s => s.Id == 2);
        }

        string[] keys = [b.Coherence.StoreKeyOf(first), b.Coherence.StoreKeyOf(second)];
        var observer = new UpdateObserver(() => [.. keys.Select(Store.Peek)], keys);
        using var writer = NewCoherence(Store);
        using SheetContext context = NewContext(writer, observer);
        using (writer.BeginScope())
        {
            context.Sheets.Single(s => s.Id == 1).Title = "Q2";
            context.Sheets.Single(s => s.Id == 2).Title = "other 2";
            Assert.Equal(2, context.SaveChanges());
        }

        Assert.NotEmpty(observer.Updates);
        Assert.All(observer.Updates, update => Assert.Equal([SharedToken.Clean(1).Value, SharedToken.Clean(1).Value], update.Tokens));
        Assert.All(observer.Updates, update => Assert.True(update.InTransaction));
        Assert.Equal([SharedToken.Dirty(2).Value, SharedToken.Dirty(2).Value], Assert.Single(observer.Commits));
        Assert.All(keys, key => Assert.Equal(SharedToken.Clean(2).Value, Store.Peek(key)));
        using (b.Coherence.BeginScope())
        {
            Assert.Equal(("Q2", "other 2"), (first.Title, second.Title));
        }
    }

    [Fact]
    public async Task An_edit_of_only_owned_data_moves_the_version_so_a_concurrent_edit_is_refused_and_the_other_process_reloads_it()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        a.Context.Invoices.Add(new Invoice { Id = 1, Version = 1, Number = "F-1", BillingAddress = new Address { Street = "1 Main St", City = "Lyon" } });
        a.Context.SaveChanges();
        Invoice inB = b.Context.Invoices.Single(i => i.Id == 1);

        await using (a.Coherence.BeginScope())
        {
            a.Context.Invoices.Single(i => i.Id == 1).BillingAddress.City = "Paris";
            await a.Context.SaveChangesSharedAsync();
        }

        Assert.Equal(2, a.Context.Invoices.AsNoTracking().Single(i => i.Id == 1).Version);

        // B edits the owned data of its copy at version 1: saving it would lose A's change.
        inB.BillingAddress.Street = "2 Side St";
        await Assert.ThrowsAsync<StaleEntityException>(() => b.Context.SaveChangesSharedAsync());
        Assert.Equal("Paris", a.Context.Invoices.AsNoTracking().Single(i => i.Id == 1).BillingAddress.City);

        Proc c = NewProcess();
        Invoice inC = c.Context.Invoices.Single(i => i.Id == 1);
        await using (a.Coherence.BeginScope())
        {
            a.Context.Invoices.Single(i => i.Id == 1).BillingAddress.Street = "3 High St";
            await a.Context.SaveChangesSharedAsync();
        }

        await using (c.Coherence.BeginScope())
        {
            Assert.Equal("F-1", inC.Number); // the check reloads the row, owned columns included
            Assert.Equal(("3 High St", "Paris"), (inC.BillingAddress.Street, inC.BillingAddress.City));
        }
    }

    [Fact]
    public void A_shared_entity_that_owns_a_collection_is_refused_when_the_model_is_built()
    {
        var options = new DbContextOptionsBuilder<OwnedCollectionContext>();
        Configure(options);
        using var coherence = NewCoherence(Store);
        using var context = new OwnedCollectionContext(options.UseSharedEntities(coherence, Dialect).Options);
        var refused = Assert.Throws<InvalidOperationException>(() => context.Model);
        Assert.Contains("owns a collection (Addresses)", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_store_ahead_of_the_database_is_repaired_and_the_next_save_is_guarded_by_the_repaired_version()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        string key = a.Coherence.StoreKeyOf(WarmUp(a));
        var forge = new StoreBatch();
        forge.Add(new StoreOperation(StoreOperationKind.Raise, key, SharedToken.Clean(5).Value, Ttl: TimeSpan.FromHours(1)));
        Store.Execute(forge);

        // A row a query reads outside a transaction counts as checked, so the first write of it meets the forged token:
        // refused (committing version 2 would reuse a version the store already knows), and the process remembers
        // that the key must be checked.
        Proc b = NewProcess();
        await using (b.Coherence.BeginScope())
        {
            Sheet sheet = b.Context.Sheets.Single(s => s.Id == 1);
            Assert.Equal(("Q1", 1L), (sheet.Title, sheet.Version));
            sheet.Title = "refused";
            StaleEntityException refused = await Assert.ThrowsAsync<StaleEntityException>(() => b.Context.SaveChangesSharedAsync());
            Assert.Contains("ahead of the database", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal(("Q1", 1L), ReadRow(1));

        // The retry, in a new context of the same process: the query's row is checked now, which repairs it.
        using SheetContext retry = NewContext(b.Coherence);
        await using (b.Coherence.BeginScope())
        {
            Sheet sheet = retry.Sheets.Single(s => s.Id == 1);
            Assert.Equal("Q1", sheet.Title);
            Assert.Equal(6, sheet.Version);
            sheet.Title = "Q2";
            await retry.SaveChangesSharedAsync();
        }

        Assert.Equal(("Q2", 7L), ReadRow(1));
        Assert.Equal(SharedToken.Clean(7).Value, Store.Peek(key));
    }

    [Fact]
    public async Task A_row_deleted_and_added_again_is_not_deleted_for_new_readers_and_never_taken_for_the_old_one()
    {
        Proc a = NewProcess();
        Proc holder = NewProcess();
        Insert(a, 1, "first");
        Sheet held = WarmUp(holder);
        string key = holder.Coherence.StoreKeyOf(held);
        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Remove(a.Context.Sheets.Single(s => s.Id == 1));
            await a.Context.SaveChangesSharedAsync();
        }

        Proc creator = NewProcess();
        var again = new Sheet { Id = 1, Title = "second" };
        creator.Context.Sheets.Add(again);
        await creator.Context.SaveChangesSharedAsync();
        Assert.True(again.Version > 1L << 40, $"a re-created row starts at a version no earlier row used; it got {again.Version}");
        Assert.Equal(SharedToken.Clean(again.Version).Value, Store.Peek(key));

        Proc reader = NewProcess();
        await using (reader.Coherence.BeginScope())
        {
            Assert.Equal("second", reader.Context.Sheets.Single(s => s.Id == 1).Title);
        }

        Store.Evict(key);
        await using (holder.Coherence.BeginScope())
        {
            Assert.Equal("second", held.Title);
        }
    }

    [Fact]
    public async Task A_refused_save_leaves_no_change_behind_for_a_later_save_of_the_context_to_commit()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "one");
        Insert(a, 2, "two");
        Insert(a, 3, "three");
        Sheet first = a.Context.Sheets.Single(s => s.Id == 1);
        Sheet second = a.Context.Sheets.Single(s => s.Id == 2);
        Sheet third = a.Context.Sheets.Single(s => s.Id == 3);
        await using (b.Coherence.BeginScope())
        {
            b.Context.Sheets.Single(s => s.Id == 1).Title = "one, by B";
            await b.Context.SaveChangesSharedAsync();
        }

        await using (a.Coherence.BeginScope())
        {
            first.Title = "one, by A";
            second.Title = "two, by A";
            await Assert.ThrowsAsync<StaleEntityException>(() => a.Context.SaveChangesSharedAsync()); // sheet 1 moved on
        }

        // The application was told that nothing was written. A later save of the same context, for another entity,
        // must not write the refused change of sheet 2 (whose row did not move) behind its back.
        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("one, by B", first.Title);
            third.Title = "three, by A";
            await a.Context.SaveChangesSharedAsync();
        }

        Assert.Equal(("two", 1L), ReadRow(2));
        Assert.Equal(("three, by A", 2L), ReadRow(3));
        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("two", second.Title);
        }
    }

    [Fact]
    public void A_save_inside_a_TransactionScope_is_refused_before_any_statement_and_loses_nothing()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        Sheet sheet = WarmUp(a);
        using (a.Coherence.BeginScope())
        {
            sheet.Title = "in an ambient transaction";
            using (new System.Transactions.TransactionScope())
            {
                NotSupportedException refused = Assert.Throws<NotSupportedException>(() => a.Context.SaveChanges());
                Assert.Contains("BeginTransaction", refused.Message, StringComparison.Ordinal);
            }

            Assert.Equal(1, sheet.Version);
            Assert.Equal("in an ambient transaction", sheet.Title); // the change is kept: saving it outside works
            Assert.Equal(1, a.Context.SaveChanges());
        }

        Assert.Equal(("in an ambient transaction", 2L), ReadRow(1));
    }

    [Fact]
    public async Task A_lease_fill_runs_inside_the_loaders_locking_transaction_on_the_same_file()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        foreach (bool async in new[] { false, true })
        {
            Proc b = NewProcess();
            Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
            string key = b.Coherence.StoreKeyOf(inB);
            Store.Evict(key);
            await using (FreshScope scope = b.Coherence.BeginScope())
            {
                if (async)
                {
                    await scope.CheckAsync([inB]);
                }

                Assert.Equal("Q1", inB.Title);
            }

            Assert.Equal(SharedToken.Clean(1).Value, Store.Peek(key));
        }
    }

    [Fact]
    public async Task Many_stale_entities_reload_in_one_query()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        for (int id = 1; id <= 20; id++)
        {
            a.Context.Sheets.Add(new Sheet { Id = id, Title = "v1" });
        }

        a.Context.SaveChanges();
        List<Sheet> inB;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            inB = await b.Context.Sheets.ToListAsync();
            await scope.CheckAsync(inB);
        }

        await using (a.Coherence.BeginScope())
        {
            foreach (Sheet sheet in a.Context.Sheets)
            {
                sheet.Title = "v2";
            }

            await a.Context.SaveChangesSharedAsync();
        }

        DbContextEntityLoader loader = b.Context.GetSharedEntityLoader()!;
        int before = loader.Loader?.Statements ?? 0;
        await using (FreshScope scope = b.Coherence.BeginScope())
        {
            await scope.CheckAsync(inB);
            Assert.All(inB, s => Assert.Equal("v2", s.Title));
        }

        Assert.Equal(1, (loader.Loader?.Statements ?? 0) - before);
        Assert.False(b.Context.ChangeTracker.HasChanges());
    }

    [Fact]
    public async Task A_scope_commit_tells_the_user_to_save_through_the_context()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        await using FreshScope scope = a.Coherence.BeginScope();
        a.Context.Sheets.Single(s => s.Id == 1).Title = "x";
        NotSupportedException refused = await Assert.ThrowsAsync<NotSupportedException>(() => scope.CommitAsync());
        Assert.Contains("SaveChanges", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_save_whose_dirty_token_the_store_cannot_take_is_not_committed()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        var down = new SqliteSharedStore($"Data Source={Path.Combine(Path.GetTempPath(), "se-ef-missing-" + Guid.NewGuid().ToString("N"), "x.db")}");
        using var coherence = NewCoherence(down);
        using SheetContext context = NewContext(coherence);
        Sheet sheet = context.Sheets.Single(s => s.Id == 1);
        sheet.Title = "not without a dirty token";
        Assert.Throws<SharedStoreUnavailableException>(() => context.SaveChangesShared());
        Assert.Equal(1, sheet.Version);
        Assert.Equal(("Q1", 1L), ReadRow(1));
    }

    [Fact]
    public async Task A_conflict_inside_an_application_transaction_leaves_the_earlier_saves_to_publish_at_its_commit()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Insert(a, 2, "other");
        Sheet inB = WarmUp(b);
        Sheet secondInB = b.Context.Sheets.Single(s => s.Id == 2);
        await using (a.Coherence.BeginScope())
        {
            a.Context.Sheets.Single(s => s.Id == 2).Title = "other, from A";
            await a.Context.SaveChangesSharedAsync();
        }

        await using (b.Coherence.BeginScope())
        {
            await using var transaction = await b.Context.Database.BeginTransactionAsync();
            inB.Title = "Q2 from B";
            await b.Context.SaveChangesSharedAsync();
            secondInB.Title = "other, from B";
            await Assert.ThrowsAsync<StaleEntityException>(() => b.Context.SaveChangesSharedAsync());
            b.Context.Entry(secondInB).State = EntityState.Unchanged;
            await transaction.CommitAsync();
        }

        Assert.Equal(("Q2 from B", 2L), ReadRow(1));
        Assert.Equal(("other, from A", 2L), ReadRow(2));
        Assert.Equal(SharedToken.Clean(2).Value, Store.Peek(b.Coherence.StoreKeyOf(inB)));
        Assert.Equal(1, secondInB.Version);
    }

    [Fact]
    public async Task A_lease_fill_inside_an_old_snapshot_is_refused_by_the_locking_read()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inB = b.Context.Sheets.Single(s => s.Id == 1);
        using (BeginSnapshot(b.Context))
        {
            await using (a.Coherence.BeginScope())
            {
                a.Context.Sheets.Single(s => s.Id == 1).Title = "from A";
                await a.Context.SaveChangesSharedAsync();
            }

            Store.Evict(a.Coherence.StoreKeyOf(inB));
            await using (b.Coherence.BeginScope())
            {
                // Miss → B wins the lease → locked version read in B's old snapshot → the database refuses it.
                Assert.Throws<StaleSnapshotException>(() => inB.Title);
            }
        }
    }

    [Fact]
    public async Task An_int_version_is_incremented_and_guarded_too()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        a.Context.Counters.Add(new Counter { Id = 1, Value = 10, Version = 1 });
        a.Context.SaveChanges();
        Counter inB = b.Context.Counters.Single(c => c.Id == 1);
        await using (a.Coherence.BeginScope())
        {
            a.Context.Counters.Single(c => c.Id == 1).Value++;
            await a.Context.SaveChangesSharedAsync();
        }

        inB.Value = 100;
        await Assert.ThrowsAsync<StaleEntityException>(() => b.Context.SaveChangesSharedAsync());
        Assert.Equal(1, inB.Version);
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal(11, inB.Value);
            Assert.Equal(2, inB.Version);
        }
    }

    [Fact]
    public async Task A_serial_only_entity_is_written_and_its_serial_bumped_after_the_commit()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        a.Context.Notes.Add(new Note { Id = 1, Text = "first" });
        a.Context.SaveChanges();
        Note inB;
        await using (b.Coherence.BeginScope())
        {
            inB = b.Context.Notes.Single(n => n.Id == 1);
            Assert.Equal("first", inB.Text);
        }

        await using (a.Coherence.BeginScope())
        {
            a.Context.Notes.Single(n => n.Id == 1).Text = "second";
            await a.Context.SaveChangesSharedAsync();
        }

        await using (b.Coherence.BeginScope())
        {
            Assert.Equal("second", inB.Text);
        }

        Assert.False(b.Context.ChangeTracker.HasChanges());
    }

    [Fact]
    public async Task A_transaction_disposed_without_commit_publishes_nothing_and_the_writer_reloads_its_copy()
    {
        Proc a = NewProcess();
        Proc b = NewProcess();
        Insert(a, 1, "Q1");
        Sheet inA = WarmUp(a);
        string key = a.Coherence.StoreKeyOf(inA);
        try
        {
            await using var transaction = await a.Context.Database.BeginTransactionAsync();
            inA.Title = "never committed";
            await a.Context.SaveChangesSharedAsync();
            throw new TimeoutException("the work failed before its commit");
        }
        catch (TimeoutException)
        {
        }

        Assert.Equal(1, inA.Version);
        Assert.Equal(SharedToken.Clean(1).Value, Store.Peek(key));

        // Another process commits version 2: A's copy must not pass as version 2.
        await using (b.Coherence.BeginScope())
        {
            b.Context.Sheets.Single(s => s.Id == 1).Title = "from B";
            await b.Context.SaveChangesSharedAsync();
        }

        await using (a.Coherence.BeginScope())
        {
            Assert.Equal("from B", inA.Title);
            Assert.Equal(2, inA.Version);
        }
    }

    [Fact]
    public async Task The_DI_form_takes_the_runtime_from_the_service_provider()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        using var coherence = NewCoherence(Store);
        var collection = new ServiceCollection().AddSingleton(coherence);
        AddDialect(collection.AddSharedEntities());
        using ServiceProvider services = collection
            .AddDbContext<SheetContext>((sp, options) =>
            {
                Configure(options);
                options.UseSharedEntities(sp);
            })
            .BuildServiceProvider();
        Sheet inB;
        using (IServiceScope request = services.CreateScope())
        {
            SheetContext context = request.ServiceProvider.GetRequiredService<SheetContext>();
            await using (coherence.BeginScope())
            {
                inB = context.Sheets.Single(s => s.Id == 1);
                Assert.Equal("Q1", inB.Title);
            }

            await using (a.Coherence.BeginScope())
            {
                a.Context.Sheets.Single(s => s.Id == 1).Title = "Q2";
                await a.Context.SaveChangesSharedAsync();
            }

            await using (coherence.BeginScope())
            {
                Assert.Equal("Q2", inB.Title);
                inB.Title = "Q3";
                await context.SaveChangesSharedAsync();
            }
        }

        Assert.Equal(("Q3", 3L), ReadRow(1));
    }

    /// <summary>Values another client of the store may leave under a live key: none of them is a token of this row.</summary>
    public static TheoryData<long> DamagedValues => new()
    {
        long.MaxValue,                                   // the serial-only tombstone
        -5,                                              // negative
        7,                                               // a state the library never writes
        SharedToken.Clean(0).Value,                      // older than every copy
        SharedToken.Clean(10_000_000_000_000).Value,     // far ahead of the row
        SharedToken.Dirty(10_000_000_000_000).Value,
        SharedToken.Deleted(10_000_000_000_000).Value,
    };

    [Theory]
    [MemberData(nameof(DamagedValues))]
    public async Task A_value_the_library_did_not_write_is_replaced_by_one_check_and_saves_go_through(long value)
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        string key = a.Coherence.StoreKeyOf(WarmUp(a));
        Proc b = NewProcess();
        Sheet held = WarmUp(b); // held from an earlier scope: the next scope checks it (a row just read would count as checked)
        PlantInStore(key, value);

        await using (b.Coherence.BeginScope())
        {
            Sheet sheet = b.Context.Sheets.Single(s => s.Id == 1);
            Assert.Same(held, sheet);
            Assert.Equal("Q1", sheet.Title);
            Assert.Equal(SharedToken.Clean(ReadRow(1).Version).Value, Store.Peek(key)); // repaired by this one check
            sheet.Title = "Q2";
            await b.Context.SaveChangesSharedAsync();
        }

        Assert.Equal("Q2", ReadRow(1).Title);
        Assert.Equal(SharedToken.Clean(ReadRow(1).Version).Value, Store.Peek(key));
        if (!StoreAnswersInApplicationTransactions)
        {
            return;
        }

        // The same inside the application's transaction: the check reads and fills in it, the save commits with it.
        PlantInStore(key, value);
        Proc c = NewProcess();
        await using (c.Coherence.BeginScope())
        {
            await using Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction transaction = await c.Context.Database.BeginTransactionAsync();
            Sheet sheet = c.Context.Sheets.Single(s => s.Id == 1);
            Assert.Equal("Q2", sheet.Title);
            sheet.Title = "Q3";
            await c.Context.SaveChangesSharedAsync();
            await transaction.CommitAsync();
        }

        Assert.Equal("Q3", ReadRow(1).Title);
        Assert.Equal(SharedToken.Clean(ReadRow(1).Version).Value, Store.Peek(key));
    }

    /// <summary>Whether the store can be written while an application transaction is open (not the embedded store in the data's own file).</summary>
    protected virtual bool StoreAnswersInApplicationTransactions => true;

    /// <summary>Writes <paramref name="value"/> under <paramref name="key"/> in the store's table, as another client would (no TTL).</summary>
    protected abstract void PlantInStore(string key, long value);

    /// <summary>Writes a raw item into the embedded store's table of the SQLite file <paramref name="file"/>.</summary>
    protected static void PlantInStoreFile(string file, string key, long value)
    {
        using var connection = new SqliteConnection($"Data Source={file};Default Timeout=5");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = $"INSERT OR REPLACE INTO {SqliteSharedStore.TableName} (key, value, cas, expires_at, placeholder) VALUES ($key, $value, $cas, NULL, 0)";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$value", value);
        command.Parameters.AddWithValue("$cas", Random.Shared.NextInt64(1, long.MaxValue));
        command.ExecuteNonQuery();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_query_streamed_while_its_tokens_are_cold_fills_their_leases_without_touching_the_busy_connection(bool async)
    {
        Proc a = NewProcess();
        for (int id = 1; id <= 3; id++)
        {
            Insert(a, id, "Q" + id);
        }

        // Held from before the scope (rows a query reads in the scope count as checked): every first touch in the
        // scope checks, while the tokens are cold: each check wins a lease and fills it from a locked read.
        Proc b = NewProcess();
        Assert.Equal(3, b.Context.Sheets.ToList().Count);
        Store.Clear();
        var titles = new List<string>();
        await using (b.Coherence.BeginScope())
        {
            if (async)
            {
                await foreach (Sheet sheet in b.Context.Sheets.OrderBy(s => s.Id).AsAsyncEnumerable())
                {
                    titles.Add(sheet.Title); // checked while the query's data reader is still open
                }
            }
            else
            {
                foreach (Sheet sheet in b.Context.Sheets.OrderBy(s => s.Id))
                {
                    titles.Add(sheet.Title);
                }
            }
        }

        Assert.Equal(["Q1", "Q2", "Q3"], titles);
        foreach (Sheet sheet in b.Context.Sheets.Local)
        {
            Assert.Equal(SharedToken.Clean(1).Value, Store.Peek(b.Coherence.StoreKeyOf(sheet))); // filled: no placeholder left behind
        }
    }

    [Fact]
    public async Task A_query_streamed_while_its_entities_are_stale_reloads_them_and_the_context_still_saves()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        Insert(a, 2, "Q2");
        Proc b = NewProcess();
        await using (b.Coherence.BeginScope())
        {
            Assert.Equal(2, b.Context.Sheets.ToList().Count(s => s.Title.Length > 0));
        }

        await using (a.Coherence.BeginScope())
        {
            foreach (Sheet sheet in a.Context.Sheets)
            {
                sheet.Title += " from A";
            }

            await a.Context.SaveChangesSharedAsync();
        }

        var titles = new List<string>();
        await using (b.Coherence.BeginScope())
        {
            foreach (Sheet sheet in b.Context.Sheets.OrderBy(s => s.Id))
            {
                titles.Add(sheet.Title); // clean(2) in the store: a reload, while the reader is open
            }

            Assert.False(b.Context.ChangeTracker.HasChanges()); // the reload is not a change to save
            b.Context.Sheets.Local.Single(s => s.Id == 1).Title = "from B";
            await b.Context.SaveChangesSharedAsync();
        }

        Assert.Equal(["Q1 from A", "Q2 from A"], titles);
        Assert.Equal(("from B", 3L), ReadRow(1));
    }

    private static Sheet WarmUp(Proc process)
    {
        using (process.Coherence.BeginScope())
        {
            Sheet sheet = process.Context.Sheets.Single(s => s.Id == 1);
            Assert.NotNull(sheet.Title);
            return sheet;
        }
    }

    protected (string Title, long Version) ReadRow(int id)
    {
        using SheetContext context = NewContext(NewCoherence(Store));
        var row = context.Sheets.AsNoTracking().Where(s => s.Id == id).Select(s => new { s.Title, s.Version }).Single();
        return (row.Title, row.Version);
    }

    protected static void Insert(Proc process, int id, string title)
    {
        process.Context.Sheets.Add(new Sheet { Id = id, Title = title, Version = 1 }); // an explicit first version: these stories count from 1
        process.Context.SaveChanges();
    }

    protected abstract void Configure(DbContextOptionsBuilder options);

    /// <summary>The dialect the stories pass to <c>UseSharedEntities</c>; <see langword="null"/>: the one found for the connection.</summary>
    protected virtual DbDialect? Dialect => null;

    /// <summary>Registers the provider's dialect for the DI form, as an application does.</summary>
    protected virtual void AddDialect(SharedEntitiesBuilder builder)
    {
    }

    /// <summary>Begins, in <paramref name="context"/>, a transaction whose snapshot is taken now (REPEATABLE READ); disposing rolls it back.</summary>
    protected abstract IDisposable BeginSnapshot(SheetContext context);

    protected abstract void DisposeDatabase();

    protected SheetContext NewContext(Coherence coherence, params IInterceptor[] interceptors)
    {
        var options = new DbContextOptionsBuilder<SheetContext>();
        Configure(options);
        return new SheetContext(options.UseSharedEntities(coherence, Dialect).AddInterceptors(interceptors).Options);
    }

    /// <summary>
    /// Records, as each UPDATE is about to run, the tokens <c>peek</c> reads and whether it runs in a transaction, and
    /// the tokens as each transaction commits (after SharedEntities' own interceptor, which is registered first).
    /// (SaveChanges runs its statements as readers, to count the rows each changed, on both providers.)
    /// </summary>
    protected sealed class UpdateObserver(Func<long?[]> peek, string[]? keys = null) : DbCommandInterceptor, IDbTransactionInterceptor
    {
        public List<Seen> Updates { get; } = [];

        public List<long?[]> Commits { get; } = [];

        public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
        {
            Commits.Add(PeekAtCommit(transaction));
            return result;
        }

        public ValueTask<InterceptionResult> TransactionCommittingAsync(
            DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
        {
            Commits.Add(PeekAtCommit(transaction));
            return ValueTask.FromResult(result);
        }

        // On SQLite the embedded store raises inside the committing transaction (atomically with it): only that
        // transaction's connection sees the dirty tokens before the commit.
        private long?[] PeekAtCommit(DbTransaction transaction)
        {
            if (transaction is not SqliteTransaction || keys is null)
            {
                return peek();
            }

            return [.. keys.Select(key =>
            {
                using DbCommand command = transaction.Connection!.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = $"SELECT value FROM {SqliteSharedStore.TableName} WHERE key = $key AND placeholder = 0";
                var parameter = command.CreateParameter();
                parameter.ParameterName = "$key";
                parameter.Value = key;
                command.Parameters.Add(parameter);
                return command.ExecuteScalar() is long value ? value : (long?)null;
            })];
        }

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
        {
            Observe(command);
            return result;
        }

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Observe(command);
            return ValueTask.FromResult(result);
        }

        private void Observe(DbCommand command)
        {
            if (command.CommandText.Contains("UPDATE", StringComparison.OrdinalIgnoreCase))
            {
                Updates.Add(new Seen(peek(), command.Transaction is not null));
            }
        }

        public sealed record Seen(long?[] Tokens, bool InTransaction);
    }

    protected void CreateSchema()
    {
        using SheetContext context = NewContext(NewCoherence(Store));
        context.Database.EnsureCreated();
    }

    /// <summary>
    /// A runtime for the stories' model: <see cref="Invoice"/> owns data, which the entity cache cannot carry, so it is
    /// excluded from the cache (without that, the model is refused on the context's first use).
    /// </summary>
    internal static Coherence NewCoherence(ISharedStore store)
    {
        var options = new CoherenceOptions();
        options.EntityCache.ExcludedEntities.Add(nameof(Invoice));
        return new Coherence(store, options);
    }

    protected Proc NewProcess()
    {
        var coherence = NewCoherence(Store);
        SheetContext context = NewContext(coherence);
        _owned.Add(coherence);
        _owned.Add(context);
        return new Proc(coherence, context);
    }

    protected sealed record Proc(Coherence Coherence, SheetContext Context);
}

public sealed class SqliteStoryTests : StoryTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;

    public SqliteStoryTests()
    {
        _store = new SqliteSharedStore(ConnectionString); // the embedded store, in the data file
        CreateSchema();
        using SheetContext context = NewContext(NewCoherence(_store));
        context.Database.ExecuteSqlRaw("PRAGMA journal_mode = WAL");
    }

    protected override SqliteSharedStore Store => _store;

    private string ConnectionString => $"Data Source={_folder.File("app.db")};Default Timeout=5";

    protected override void Configure(DbContextOptionsBuilder options) => options.UseSqlite(ConnectionString);

    protected override DbDialect? Dialect => SqliteDialect.Instance;

    protected override void AddDialect(SharedEntitiesBuilder builder) => builder.AddSqliteDialect();

    [Fact]
    public void Without_its_dialect_SQLite_is_refused_naming_the_package_and_the_calls()
    {
        using var coherence = NewCoherence(Store);
        var options = new DbContextOptionsBuilder<SheetContext>();
        Configure(options);
        using var context = new SheetContext(options.UseSharedEntities(coherence).Options);
        context.Sheets.Add(new Sheet { Id = 1, Title = "Q1", Version = 1 });

        var refused = Assert.Throws<NotSupportedException>(() => context.SaveChanges());
        Assert.Contains("'Microsoft.EntityFrameworkCore.Sqlite'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("SharedEntities.Sqlite package", refused.Message, StringComparison.Ordinal);
        Assert.Contains("AddSqliteDialect()", refused.Message, StringComparison.Ordinal);
        Assert.Contains("SqliteDialect.Instance", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_coherence_form_finds_the_dialect_registered_with_the_application_services()
    {
        Proc a = NewProcess();
        Insert(a, 1, "Q1");
        using var coherence = NewCoherence(Store);
        var collection = new ServiceCollection();
        collection.AddSharedEntities().AddSqliteDialect();
        using ServiceProvider services = collection
            .AddDbContext<SheetContext>(options =>
            {
                Configure(options);
                options.UseSharedEntities(coherence);
            })
            .BuildServiceProvider();
        using (IServiceScope request = services.CreateScope())
        {
            SheetContext context = request.ServiceProvider.GetRequiredService<SheetContext>();
            await using (coherence.BeginScope())
            {
                context.Sheets.Single(s => s.Id == 1).Title = "Q2";
                await context.SaveChangesSharedAsync();
            }
        }

        Assert.Equal(("Q2", 2L), ReadRow(1));
    }

    protected override IDisposable BeginSnapshot(SheetContext context) => TestDatabases.BeginSqliteSnapshot(context, () => context.Sheets.AsNoTracking().Any());

    protected override bool StoreAnswersInApplicationTransactions => false;

    protected override void PlantInStore(string key, long value) => PlantInStoreFile(_folder.File("app.db"), key, value);

    protected override void DisposeDatabase() => _folder.Dispose();
}

[Collection(PostgresFixture.Name)]
public sealed class PostgresStoryTests : StoryTests
{
    private readonly TempFolder _folder = new();
    private readonly SqliteSharedStore _store;
    private readonly string _connectionString;

    public PostgresStoryTests(PostgresCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);

        // A database per test (EnsureCreated creates it); the cross-process store: the embedded store in a file of its own.
        _connectionString = TestDatabases.NewPostgresDatabase(cluster);
        _store = new SqliteSharedStore($"Data Source={_folder.File("tokens.db")}");
        CreateSchema();
    }

    protected override SqliteSharedStore Store => _store;

    protected override void Configure(DbContextOptionsBuilder options) => options.UseNpgsql(_connectionString);

    protected override IDisposable BeginSnapshot(SheetContext context) => TestDatabases.BeginPostgresSnapshot(context, () => context.Sheets.AsNoTracking().Any());

    protected override void PlantInStore(string key, long value) => PlantInStoreFile(_folder.File("tokens.db"), key, value);

    protected override void DisposeDatabase()
    {
        TestDatabases.ClosePostgresPool(_connectionString);
        _folder.Dispose();
    }
}
