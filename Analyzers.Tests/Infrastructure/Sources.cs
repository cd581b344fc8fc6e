namespace SharedEntities.Analyzers.Tests.Infrastructure;

/// <summary>Source snippets the tests share: the README's quick-start entity, and EF Core stand-ins.</summary>
internal static class Sources
{
    public const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using System.Linq.Expressions;
        using System.Threading;
        using System.Threading.Tasks;
        using SharedEntities;

        """;

    /// <summary>The README's quick-start <c>Sheet</c>, with two more shared properties and own members that read and write them.</summary>
    public const string Sheet = """

        [SharedEntity]
        public partial class Sheet
        {
            public int Id { get; set; }
            public long Version { get; set; }
            public partial string Title { get; set; }
            public partial DateTime LastModified { get; set; }
            public partial int Cells { get; set; }
            public partial Sheet? Parent { get; set; }
            public string LocalNote { get; set; } = "";

            public string Describe() => Title + " " + LastModified;

            public void Recalculate() => Cells = Cells + 1;
        }

        """;

    /// <summary>
    /// Minimal stand-ins with EF Core's metadata names (the analyzer resolves EF Core by name and skips it when absent),
    /// so the tests need no EF Core package.
    /// </summary>
    public const string EfCore = """

        namespace Microsoft.EntityFrameworkCore.Storage
        {
            public interface IDbContextTransaction : System.IDisposable, System.IAsyncDisposable
            {
                void Commit();
                System.Threading.Tasks.Task CommitAsync(System.Threading.CancellationToken cancellationToken = default);
                void Rollback();
                System.Threading.Tasks.Task RollbackAsync(System.Threading.CancellationToken cancellationToken = default);
            }
        }

        namespace Microsoft.EntityFrameworkCore.Infrastructure
        {
            public class DatabaseFacade
            {
                public virtual Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction BeginTransaction() => null!;
                public virtual void CommitTransaction() { }
                public virtual void RollbackTransaction() { }
            }
        }

        namespace Microsoft.EntityFrameworkCore.ChangeTracking
        {
            public class EntityEntry
            {
                public virtual void Reload() { }
                public virtual System.Threading.Tasks.Task ReloadAsync(System.Threading.CancellationToken cancellationToken = default) => System.Threading.Tasks.Task.CompletedTask;
            }

            public class EntityEntry<TEntity> : EntityEntry where TEntity : class { }
        }

        namespace Microsoft.EntityFrameworkCore
        {
            using System.Collections;
            using System.Collections.Generic;
            using System.Data;
            using System.Linq;
            using System.Linq.Expressions;
            using System.Threading;
            using System.Threading.Tasks;
            using Microsoft.EntityFrameworkCore.ChangeTracking;
            using Microsoft.EntityFrameworkCore.Infrastructure;
            using Microsoft.EntityFrameworkCore.Storage;

            public static class RelationalDatabaseFacadeExtensions
            {
                public static IDbContextTransaction BeginTransaction(this DatabaseFacade databaseFacade, IsolationLevel isolationLevel) => null!;
                public static Task<IDbContextTransaction> BeginTransactionAsync(this DatabaseFacade databaseFacade, IsolationLevel isolationLevel, CancellationToken cancellationToken = default) => null!;
            }

            public static class EntityFrameworkQueryableExtensions
            {
                public static Task<TSource> FirstAsync<TSource>(this IQueryable<TSource> source, CancellationToken cancellationToken = default) => null!;
                public static Task<List<TSource>> ToListAsync<TSource>(this IQueryable<TSource> source, CancellationToken cancellationToken = default) => null!;
            }

            public class DbContext
            {
                public virtual DatabaseFacade Database => null!;
                public virtual EntityEntry<TEntity> Entry<TEntity>(TEntity entity) where TEntity : class => null!;
            }

            public abstract class DbSet<TEntity> : IQueryable<TEntity> where TEntity : class
            {
                public abstract System.Type ElementType { get; }
                public abstract Expression Expression { get; }
                public abstract IQueryProvider Provider { get; }
                public abstract IEnumerator<TEntity> GetEnumerator();
                IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
                public virtual TEntity? Find(params object?[]? keyValues) => null;
                public virtual ValueTask<TEntity?> FindAsync(params object?[]? keyValues) => default;
            }
        }

        public class AppDb : Microsoft.EntityFrameworkCore.DbContext
        {
            public Microsoft.EntityFrameworkCore.DbSet<Sheet> Sheets => null!;
        }

        """;
}
