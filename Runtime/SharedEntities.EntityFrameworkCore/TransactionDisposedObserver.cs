using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// EF Core's interceptors see commits and rollbacks, not a transaction disposed without either (an exception in a
/// <c>using</c> block). Its diagnostic event does: the saves made in that transaction are then treated as rolled back
/// at once, before a scope could accept their uncommitted values as fresh.
/// </summary>
internal sealed class TransactionDisposedObserver : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>
{
    private static readonly TransactionDisposedObserver Instance = new();
    private static readonly List<IDisposable> Subscriptions = [];
    private static int _subscribed;

    private TransactionDisposedObserver()
    {
    }

    public static void EnsureSubscribed()
    {
        if (Interlocked.Exchange(ref _subscribed, 1) == 0)
        {
            lock (Subscriptions)
            {
                Subscriptions.Add(DiagnosticListener.AllListeners.Subscribe(Instance));
            }
        }
    }

    public void OnNext(DiagnosticListener value)
    {
        if (value.Name == DbLoggerCategory.Name)
        {
            lock (Subscriptions)
            {
                Subscriptions.Add(value.Subscribe(this, static name => name == RelationalEventId.TransactionDisposed.Name));
            }
        }
    }

    public void OnNext(KeyValuePair<string, object?> value)
    {
        if (value.Value is TransactionEventData { Context: { } context } data)
        {
            try
            {
                SharedEntitiesContexts.Of(context)?.WritePathOf(context).RolledBack(data.Transaction);
            }
            catch (ObjectDisposedException)
            {
                // The context itself is being disposed: nothing will read its entities through it.
            }
        }
    }

    public void OnCompleted()
    {
    }

    public void OnError(Exception error)
    {
    }
}
