using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace SharedEntities.Analyzers;

/// <summary>
/// SE0101 for one body: lists, in source order, where snapshot transactions begin and end, where the body reads the
/// database and where it refreshes, then reports each refresh that follows a read inside a transaction still open.
/// </summary>
internal sealed class SnapshotWalker
{
    private static readonly object ThisReceiver = new();

    private readonly TransactionSymbols _symbols;
    private readonly Action<Diagnostic> _report;
    private readonly CancellationToken _cancellationToken;

    public SnapshotWalker(TransactionSymbols symbols, Action<Diagnostic> report, CancellationToken cancellationToken)
    {
        _symbols = symbols;
        _report = report;
        _cancellationToken = cancellationToken;
    }

    private enum EventKind
    {
        Begin,
        End,
        Read,
        Refresh,
    }

    /// <summary>Analyzes <paramref name="body"/>, then each lambda and local function body inside it, each on its own.</summary>
    public void AnalyzeBody(IOperation body)
    {
        var pending = new Stack<IOperation>();
        pending.Push(body);
        while (pending.Count > 0)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            IOperation current = pending.Pop();
            var events = new List<Event>();
            Collect(current, events, pending);
            if (events.Exists(static e => e.Kind == EventKind.Begin))
            {
                Evaluate(current, events);
            }
        }
    }

    private void Collect(IOperation operation, List<Event> events, Stack<IOperation> nestedBodies)
    {
        foreach (IOperation child in operation.ChildOperations)
        {
            switch (child)
            {
                case IAnonymousFunctionOperation function:
                    nestedBodies.Push(function.Body);
                    continue;
                case ILocalFunctionOperation { Body: { } localBody }:
                    nestedBodies.Push(localBody);
                    continue;
                case ILocalFunctionOperation:
                    continue;
            }

            if (Classify(child) is { } found)
            {
                events.Add(found);
            }

            Collect(child, events, nestedBodies);
        }
    }

    private void Evaluate(IOperation body, List<Event> events)
    {
        events.Sort(static (a, b) => a.Position.CompareTo(b.Position));
        int bodyEnd = body.Syntax.Span.End;
        var reported = new HashSet<int>();
        foreach (Event begin in events)
        {
            if (begin.Kind != EventKind.Begin)
            {
                continue;
            }

            int end = begin.EndPosition ?? bodyEnd;
            bool hasRead = false;
            var seenReceivers = new HashSet<object>();
            var queried = new HashSet<(ISymbol Set, ISymbol Value)>(QueryKeyComparer.Instance);
            foreach (Event e in events)
            {
                if (e.Position <= begin.Position)
                {
                    continue;
                }

                if (e.Position >= end || e.Kind == EventKind.End && e.Ends(begin))
                {
                    break;
                }

                bool refresh = e.Kind == EventKind.Refresh
                    || e.QueryKeys.Exists(queried.Contains)
                    || e.SharedRead && e.Receiver is not null && !seenReceivers.Contains(e.Receiver);
                if (refresh && hasRead && reported.Add(e.Position))
                {
                    Location beginLocation = begin.Operation.Syntax.GetLocation();
                    _report(Diagnostic.Create(
                        DiagnosticDescriptors.RefreshInsideSnapshot,
                        e.Operation.Syntax.GetLocation(),
                        additionalLocations: [beginLocation],
                        Describe(e),
                        begin.Isolation,
                        beginLocation.GetLineSpan().StartLinePosition.Line + 1));
                }

                if (e.Kind is EventKind.Read or EventKind.Refresh)
                {
                    hasRead |= e.Reads;
                    if (e.Receiver is not null)
                    {
                        seenReceivers.Add(e.Receiver);
                    }

                    queried.UnionWith(e.QueryKeys);
                }
            }
        }
    }

    private static string Describe(Event e) => e.Operation switch
    {
        IPropertyReferenceOperation property when e.SharedRead
            => $"The first read of '{property.Property.ContainingType.Name}.{property.Property.Name}' (it checks the entity)",
        _ when e.Kind == EventKind.Read && e.QueryKeys.Count > 0 => $"This re-query of '{e.QueryKeys[0].Set.Name}' by '{e.QueryKeys[0].Value.Name}'",
        IInvocationOperation invocation => $"'{invocation.TargetMethod.ContainingType.Name}.{invocation.TargetMethod.Name}'",
        _ => "This refresh",
    };

    private Event? Classify(IOperation operation) => operation switch
    {
        IInvocationOperation invocation => ClassifyInvocation(invocation),
        IObjectCreationOperation creation when TransactionSymbols.Is(creation.Type, _symbols.TransactionScope)
            => TransactionScopeIsolation(creation) is { } isolation ? Begin(creation, isolation) : null,
        IPropertyReferenceOperation property when _symbols.Runtime.IsSharedProperty(property.Property)
            && (PropertyAccessKind.Of(property) & PropertyAccess.Read) != 0
            => new Event(EventKind.Read, property) { SharedRead = true, Reads = true, Receiver = ReceiverOf(property.Instance) },
        IForEachLoopOperation loop when TransactionSymbols.Is(Unwrap(loop.Collection)?.Type, _symbols.IQueryable)
            => new Event(EventKind.Read, Unwrap(loop.Collection)!) { Reads = true, QueryKeys = QueryKeysOf(loop.Collection) },
        _ => null,
    };

    private Event? ClassifyInvocation(IInvocationOperation invocation)
    {
        IMethodSymbol method = invocation.TargetMethod;
        INamedTypeSymbol? type = method.ContainingType;
        string name = method.Name;
        ITypeSymbol? receiverType = ReceiverOrThis(invocation)?.Type;
        KnownSymbols runtime = _symbols.Runtime;

        if (runtime.IsFreshScope(type) && name is "Check" or "CheckAsync")
        {
            return new Event(EventKind.Refresh, invocation) { Reads = true };
        }

        if (SymbolEqualityComparer.Default.Equals(type, runtime.Coherence) && name is "BeginScope" or "RunInScopeAsync")
        {
            return new Event(EventKind.Refresh, invocation) { Reads = name == "RunInScopeAsync" };
        }

        if (TransactionSymbols.Is(type, _symbols.EntityEntry) && name is "Reload" or "ReloadAsync")
        {
            object? entity = Unwrap(invocation.Instance) is IInvocationOperation { TargetMethod.Name: "Entry", Arguments: { Length: > 0 } entryArguments }
                ? ReceiverOf(entryArguments[0].Value)
                : null;
            return new Event(EventKind.Refresh, invocation) { Reads = true, Receiver = entity };
        }

        bool onFacade = TransactionSymbols.Is(receiverType, _symbols.DatabaseFacade);
        bool onConnection = TransactionSymbols.Is(receiverType, _symbols.DbConnection) || TransactionSymbols.Is(receiverType, _symbols.IDbConnection);
        if ((onFacade || onConnection) && name is "BeginTransaction" or "BeginTransactionAsync")
        {
            foreach (IArgumentOperation argument in invocation.Arguments)
            {
                if (_symbols.SnapshotIsolationName(Unwrap(argument.Value)) is { } isolation)
                {
                    return Begin(invocation, isolation) with { EndsWithFacade = onFacade };
                }
            }

            return null;
        }

        if (name is "Commit" or "CommitAsync" or "Rollback" or "RollbackAsync" or "Dispose" or "DisposeAsync"
            && Unwrap(invocation.Instance) is ILocalReferenceOperation local)
        {
            return new Event(EventKind.End, invocation) { Handle = local.Local };
        }

        if (onFacade && name is "CommitTransaction" or "CommitTransactionAsync" or "RollbackTransaction" or "RollbackTransactionAsync")
        {
            return new Event(EventKind.End, invocation) { EndsWithFacade = true };
        }

        return IsQuery(invocation, method, receiverType, onFacade, onConnection)
            ? new Event(EventKind.Read, invocation) { Reads = true, QueryKeys = QueryKeysOf(invocation) }
            : null;
    }

    private bool IsQuery(IInvocationOperation invocation, IMethodSymbol method, ITypeSymbol? receiverType, bool onFacade, bool onConnection)
    {
        string name = method.Name;
        INamedTypeSymbol? type = method.ContainingType;
        if (name is "Find" or "FindAsync" && (TransactionSymbols.Is(type, _symbols.DbSet) || TransactionSymbols.Is(type, _symbols.DbContext)))
        {
            return true;
        }

        if (name.StartsWith("Execute", StringComparison.Ordinal)
            && (TransactionSymbols.Is(receiverType, _symbols.DbCommand) || TransactionSymbols.Is(receiverType, _symbols.IDbCommand)))
        {
            return true;
        }

        // EF Core raw SQL on the facade, and Dapper-style extension methods on a connection.
        if ((onFacade && (name.StartsWith("Execute", StringComparison.Ordinal) || name.StartsWith("SqlQuery", StringComparison.Ordinal)))
            || (onConnection && method.IsExtensionMethod && (name.StartsWith("Query", StringComparison.Ordinal) || name.StartsWith("Execute", StringComparison.Ordinal))))
        {
            return true;
        }

        // A LINQ operator that runs the query: it returns something other than a query.
        bool linq = SymbolEqualityComparer.Default.Equals(type, _symbols.Queryable)
            || SymbolEqualityComparer.Default.Equals(type, _symbols.EntityFrameworkQueryableExtensions)
            || SymbolEqualityComparer.Default.Equals(type, _symbols.Enumerable);
        return linq
            && invocation.Arguments.Length > 0
            && TransactionSymbols.Is(Unwrap(invocation.Arguments[0].Value)?.Type, _symbols.IQueryable)
            && !TransactionSymbols.Is(method.ReturnType, _symbols.IQueryable)
            && (!SymbolEqualityComparer.Default.Equals(type, _symbols.Enumerable)
                || name.StartsWith("To", StringComparison.Ordinal)
                || method.ReturnType.SpecialType != SpecialType.None
                || method.ReturnType.AllInterfaces.IsEmpty);
    }

    /// <summary>The entity type of the <c>DbSet&lt;T&gt;</c> a query starts from, following the LINQ chain down.</summary>
    private ITypeSymbol? EntitySetOf(IOperation? operation)
    {
        for (IOperation? current = Unwrap(operation); current is not null;)
        {
            if (current.Type is INamedTypeSymbol { TypeArguments.Length: 1 } named && TransactionSymbols.Is(named, _symbols.DbSet))
            {
                return named.TypeArguments[0];
            }

            current = current is IInvocationOperation invocation
                ? Unwrap(invocation.Instance ?? (invocation.Arguments.Length > 0 ? invocation.Arguments[0].Value : null))
                : null;
        }

        return null;
    }

    /// <summary>
    /// The isolation level of a <c>new TransactionScope(...)</c>: from an inline <c>new TransactionOptions { IsolationLevel = ... }</c>;
    /// Serializable (the default) without options; none for <c>TransactionScopeOption.Suppress</c> or options it cannot read.
    /// </summary>
    /// <summary>
    /// What identifies a query of an entity set well enough to call a second one a re-query: the set's entity type
    /// paired with each local, parameter or field the query uses (<c>Find(id)</c> and <c>Where(s => s.Id == id)</c> share
    /// <c>id</c>; <c>Count()</c> has none, and a query by another variable is another row).
    /// </summary>
    private List<(ISymbol Set, ISymbol Value)> QueryKeysOf(IOperation query)
    {
        if (EntitySetOf(query) is not { } set)
        {
            return [];
        }

        var keys = new List<(ISymbol, ISymbol)>();
        foreach (IOperation operation in query.Descendants())
        {
            ISymbol? value = operation switch
            {
                ILocalReferenceOperation local => local.Local,
                IParameterReferenceOperation { Parameter.ContainingSymbol: IMethodSymbol { MethodKind: not MethodKind.AnonymousFunction } } parameter => parameter.Parameter,
                IFieldReferenceOperation field => field.Field,
                _ => null,
            };

            if (value is not null && !TransactionSymbols.Is(value switch { ILocalSymbol l => l.Type, IParameterSymbol p => p.Type, IFieldSymbol f => f.Type, _ => null }, _symbols.DbContext))
            {
                keys.Add((set, value));
            }
        }

        return keys;
    }

    private string? TransactionScopeIsolation(IObjectCreationOperation creation)
    {
        foreach (IArgumentOperation argument in creation.Arguments)
        {
            IOperation? value = Unwrap(argument.Value);
            ITypeSymbol? parameterType = argument.Parameter?.Type;
            if (TransactionSymbols.Is(parameterType, _symbols.TransactionScopeOption)
                && value?.ConstantValue is { HasValue: true, Value: 2 })
            {
                return null; // TransactionScopeOption.Suppress: no transaction
            }

            if (!TransactionSymbols.Is(parameterType, _symbols.TransactionOptions))
            {
                continue;
            }

            if (value is not IObjectCreationOperation options)
            {
                return null;
            }

            foreach (IOperation member in options.Initializer?.Initializers ?? [])
            {
                if (member is ISimpleAssignmentOperation { Target: IPropertyReferenceOperation { Property.Name: "IsolationLevel" } } assignment)
                {
                    return _symbols.SnapshotIsolationName(Unwrap(assignment.Value));
                }
            }
        }

        return "Serializable";
    }

    private static Event Begin(IOperation operation, string isolation)
    {
        // Follow the value to where it is kept: await, ConfigureAwait, a local, a using.
        IOperation current = operation;
        IOperation? parent = operation.Parent;
        while (parent is IAwaitOperation or IConversionOperation
            || parent is IInvocationOperation { TargetMethod.Name: "ConfigureAwait" } configure && configure.Instance == current)
        {
            current = parent;
            parent = parent.Parent;
        }

        ILocalSymbol? handle = null;
        int? end = null;
        if (parent is IVariableInitializerOperation { Parent: IVariableDeclaratorOperation declarator })
        {
            handle = declarator.Symbol;
            IOperation? group = declarator.Parent?.Parent;
            end = group?.Parent switch
            {
                IUsingDeclarationOperation usingDeclaration => usingDeclaration.Parent?.Syntax.Span.End,
                IUsingOperation usingStatement => usingStatement.Syntax.Span.End,
                _ => null,
            };
        }
        else if (parent is IUsingOperation usingStatement)
        {
            end = usingStatement.Syntax.Span.End;
        }
        else if (parent is ISimpleAssignmentOperation { Target: ILocalReferenceOperation target })
        {
            handle = target.Local;
        }

        return new Event(EventKind.Begin, operation) { Isolation = isolation, Handle = handle, EndPosition = end };
    }

    private static IOperation? ReceiverOrThis(IInvocationOperation invocation)
        => invocation.Instance ?? (invocation.TargetMethod.IsExtensionMethod && invocation.Arguments.Length > 0 ? Unwrap(invocation.Arguments[0].Value) : null);

    private static object? ReceiverOf(IOperation? instance) => Unwrap(instance) switch
    {
        ILocalReferenceOperation local => local.Local,
        IParameterReferenceOperation parameter => parameter.Parameter,
        IFieldReferenceOperation field => field.Field,
        IInstanceReferenceOperation => ThisReceiver,
        _ => null,
    };

    private static IOperation? Unwrap(IOperation? operation)
    {
        while (operation is IConversionOperation conversion)
        {
            operation = conversion.Operand;
        }

        return operation;
    }

    private sealed class QueryKeyComparer : IEqualityComparer<(ISymbol Set, ISymbol Value)>
    {
        public static readonly QueryKeyComparer Instance = new();

        public bool Equals((ISymbol Set, ISymbol Value) x, (ISymbol Set, ISymbol Value) y)
            => SymbolEqualityComparer.Default.Equals(x.Set, y.Set) && SymbolEqualityComparer.Default.Equals(x.Value, y.Value);

        public int GetHashCode((ISymbol Set, ISymbol Value) obj)
            => (SymbolEqualityComparer.Default.GetHashCode(obj.Set) * 397) ^ SymbolEqualityComparer.Default.GetHashCode(obj.Value);
    }

    private sealed record Event(EventKind Kind, IOperation Operation)
    {
        public int Position => Operation.Syntax.SpanStart;

        public bool Reads { get; init; }

        public bool SharedRead { get; init; }

        public object? Receiver { get; init; }

        /// <summary>For a query of a <c>DbSet</c>: the entity type with each outside variable the query uses (its key, usually).</summary>
        public List<(ISymbol Set, ISymbol Value)> QueryKeys { get; init; } = [];

        public string Isolation { get; init; } = "";

        public ILocalSymbol? Handle { get; init; }

        public int? EndPosition { get; init; }

        public bool EndsWithFacade { get; init; }

        /// <summary>Whether this end event ends <paramref name="begin"/>'s transaction.</summary>
        public bool Ends(Event begin)
            => Handle is not null ? SymbolEqualityComparer.Default.Equals(Handle, begin.Handle) : EndsWithFacade && begin.EndsWithFacade;
    }
}
