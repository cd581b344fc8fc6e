using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace SharedEntities.Analyzers;

/// <summary>
/// The data-access types SE0101 recognises, resolved by metadata name once per compilation. EF Core's are optional: a
/// project without EF Core still gets the ADO.NET, <c>TransactionScope</c> and runtime parts.
/// </summary>
internal sealed class TransactionSymbols
{
    private TransactionSymbols(Compilation compilation, KnownSymbols runtime)
    {
        Runtime = runtime;
        DataIsolationLevel = compilation.GetTypeByMetadataName("System.Data.IsolationLevel");
        TransactionsIsolationLevel = compilation.GetTypeByMetadataName("System.Transactions.IsolationLevel");
        DbConnection = compilation.GetTypeByMetadataName("System.Data.Common.DbConnection");
        IDbConnection = compilation.GetTypeByMetadataName("System.Data.IDbConnection");
        DbCommand = compilation.GetTypeByMetadataName("System.Data.Common.DbCommand");
        IDbCommand = compilation.GetTypeByMetadataName("System.Data.IDbCommand");
        TransactionScope = compilation.GetTypeByMetadataName("System.Transactions.TransactionScope");
        TransactionOptions = compilation.GetTypeByMetadataName("System.Transactions.TransactionOptions");
        TransactionScopeOption = compilation.GetTypeByMetadataName("System.Transactions.TransactionScopeOption");
        Queryable = compilation.GetTypeByMetadataName("System.Linq.Queryable");
        Enumerable = compilation.GetTypeByMetadataName("System.Linq.Enumerable");
        IQueryable = compilation.GetTypeByMetadataName("System.Linq.IQueryable");
        DatabaseFacade = compilation.GetTypeByMetadataName("Microsoft.EntityFrameworkCore.Infrastructure.DatabaseFacade");
        EntityEntry = compilation.GetTypeByMetadataName("Microsoft.EntityFrameworkCore.ChangeTracking.EntityEntry");
        DbContext = compilation.GetTypeByMetadataName("Microsoft.EntityFrameworkCore.DbContext");
        DbSet = compilation.GetTypeByMetadataName("Microsoft.EntityFrameworkCore.DbSet`1");
        EntityFrameworkQueryableExtensions = compilation.GetTypeByMetadataName("Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions");
    }

    public KnownSymbols Runtime { get; }

    public INamedTypeSymbol? DataIsolationLevel { get; }

    public INamedTypeSymbol? TransactionsIsolationLevel { get; }

    public INamedTypeSymbol? DbConnection { get; }

    public INamedTypeSymbol? IDbConnection { get; }

    public INamedTypeSymbol? DbCommand { get; }

    public INamedTypeSymbol? IDbCommand { get; }

    public INamedTypeSymbol? TransactionScope { get; }

    public INamedTypeSymbol? TransactionOptions { get; }

    public INamedTypeSymbol? TransactionScopeOption { get; }

    public INamedTypeSymbol? Queryable { get; }

    public INamedTypeSymbol? Enumerable { get; }

    public INamedTypeSymbol? IQueryable { get; }

    public INamedTypeSymbol? DatabaseFacade { get; }

    public INamedTypeSymbol? EntityEntry { get; }

    public INamedTypeSymbol? DbContext { get; }

    public INamedTypeSymbol? DbSet { get; }

    public INamedTypeSymbol? EntityFrameworkQueryableExtensions { get; }

    /// <summary><see langword="null"/> when no kind of transaction SE0101 knows can be begun in this compilation.</summary>
    public static TransactionSymbols? TryCreate(Compilation compilation, KnownSymbols runtime)
    {
        var symbols = new TransactionSymbols(compilation, runtime);
        return symbols.DataIsolationLevel is null && symbols.TransactionScope is null ? null : symbols;
    }

    /// <summary>A quick filter: an invocation named like a transaction's beginning, or a <c>TransactionScope</c> creation.</summary>
    public bool MayBeginTransaction(IOperation operation) => operation switch
    {
        IInvocationOperation { TargetMethod.Name: "BeginTransaction" or "BeginTransactionAsync" } => true,
        IObjectCreationOperation creation => TransactionScope is not null && SymbolEqualityComparer.Default.Equals(creation.Type, TransactionScope),
        _ => false,
    };

    /// <summary>Whether <paramref name="type"/> is <paramref name="baseType"/>, derives from it or implements it.</summary>
    public static bool Is(ITypeSymbol? type, INamedTypeSymbol? baseType)
    {
        if (type is null || baseType is null)
        {
            return false;
        }

        for (ITypeSymbol? current = type; current is not null; current = current.BaseType)
        {
            if (SymbolEqualityComparer.Default.Equals(current.OriginalDefinition, baseType))
            {
                return true;
            }
        }

        if (baseType.TypeKind == TypeKind.Interface)
        {
            foreach (INamedTypeSymbol implemented in type.AllInterfaces)
            {
                if (SymbolEqualityComparer.Default.Equals(implemented.OriginalDefinition, baseType))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The name of an isolation level that keeps a snapshot (RepeatableRead, Serializable, Snapshot), or null.</summary>
    public string? SnapshotIsolationName(IOperation? value)
    {
        if (value is null || !value.ConstantValue.HasValue || value.Type is not INamedTypeSymbol { TypeKind: TypeKind.Enum } enumType
            || !(SymbolEqualityComparer.Default.Equals(enumType, DataIsolationLevel) || SymbolEqualityComparer.Default.Equals(enumType, TransactionsIsolationLevel)))
        {
            return null;
        }

        object? constant = value.ConstantValue.Value;
        foreach (ISymbol member in enumType.GetMembers())
        {
            if (member is IFieldSymbol { HasConstantValue: true } field && Equals(field.ConstantValue, constant)
                && field.Name is "RepeatableRead" or "Serializable" or "Snapshot")
            {
                return field.Name;
            }
        }

        return null;
    }
}
