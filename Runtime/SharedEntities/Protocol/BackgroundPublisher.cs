using Microsoft.Extensions.Logging;
using SharedEntities.Stores;

namespace SharedEntities.Protocol;

/// <summary>
/// The store work that follows commits without keeping their callers waiting (docs/protocol.md, "Writer", step 4):
/// <list type="bullet">
/// <item>publishes (<see cref="CoherenceOptions.PublishInBackground"/>). A publish only turns the writer's own dirty
/// token into a clean one, whenever it lands; until it does, readers of that entity ask the database.</item>
/// <item>late raises: commits made without their dirty token (<see cref="CoherenceOptions.AllowCommitWhenStoreUnavailable"/>).
/// Until the store takes the token, other processes may still accept the old clean one, so this process keeps raising
/// the dirty token (always safe: it only sends readers to the database) and then publishes over it, until the store
/// answers or the old token has expired by itself (<see cref="CoherenceOptions.TokenTtl"/>).</item>
/// </list>
/// </summary>
internal sealed class BackgroundPublisher : IDisposable
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(2);

    private readonly Coherence _coherence;
    private readonly HashSet<Task> _publishing = [];
    private readonly List<Pending> _pending = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _added = new(0);
    private Task? _loop;

    public BackgroundPublisher(Coherence coherence) => _coherence = coherence;

    /// <summary>Sends a publish batch after a commit; its results only feed the metrics and logs.</summary>
    public void Publish(StoreBatch batch)
    {
        Task task = Task.Run(() => _coherence.ExecuteAsync(batch, async: true, CancellationToken.None).AsTask());
        lock (_publishing)
        {
            _publishing.Add(task);
        }

        task.ContinueWith(
            (done, state) =>
            {
                var publisher = (BackgroundPublisher)state!;
                lock (publisher._publishing)
                {
                    publisher._publishing.Remove(done);
                }
            },
            this,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>Completes when every publish sent so far has been answered (or has failed).</summary>
    public Task PublishedAsync(CancellationToken cancellationToken)
    {
        Task[] running;
        lock (_publishing)
        {
            running = [.. _publishing];
        }

        return Task.WhenAll(running).WaitAsync(cancellationToken);
    }

    /// <summary>Queues the dirty raise and the publish of a committed write whose dirty token the store did not take.</summary>
    public void AddLate(string key, long version, SharedToken published, TimeSpan ttl)
    {
        DateTimeOffset giveUpAt = DateTimeOffset.UtcNow + _coherence.Options.TokenTtl; // the old clean token is gone by then
        lock (_pending)
        {
            _pending.Add(new Pending(key, version, published, ttl, giveUpAt));
            _loop ??= Task.Run(() => RunAsync(_stopping.Token));
        }

        _added.Release();
    }

    public void Dispose()
    {
        _stopping.Cancel();
        try
        {
            // Publishes under way get a moment to land; whatever is left expires in the store by its TTL (a dirty token
            // left behind only sends readers to the database until then).
            PublishedAsync(CancellationToken.None).Wait(TimeSpan.FromSeconds(1));
            _loop?.Wait(TimeSpan.FromSeconds(1));
        }
        catch (AggregateException)
        {
            // Stopping.
        }

        _stopping.Dispose();
        _added.Dispose();
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        TimeSpan delay = FirstRetry;
        while (!stopping.IsCancellationRequested)
        {
            Pending[] due;
            lock (_pending)
            {
                due = [.. _pending];
            }

            if (due.Length == 0)
            {
                await _added.WaitAsync(stopping).ConfigureAwait(false);
                delay = FirstRetry;
                continue;
            }

            var raises = new StoreBatch();
            foreach (Pending p in due)
            {
                raises.Add(new StoreOperation(StoreOperationKind.Raise, p.Key, SharedToken.Dirty(p.Version).Value, Ttl: _coherence.Options.DirtyTokenTtl));
            }

            await _coherence.ExecuteAsync(raises, async: true, stopping).ConfigureAwait(false);
            var publishes = new StoreBatch();
            var done = new List<Pending>();
            for (int i = 0; i < due.Length; i++)
            {
                StoreResult raised = raises[i];
                if (raised.Status == StoreStatus.Stored || (raised.Status == StoreStatus.NotStored && raised.Value == SharedToken.Dirty(due[i].Version).Value))
                {
                    publishes.Add(new StoreOperation(StoreOperationKind.Publish, due[i].Key, due[i].Published.Value, Expected: SharedToken.Dirty(due[i].Version).Value, Ttl: due[i].Ttl));
                    done.Add(due[i]);
                }
                else if (raised.Status == StoreStatus.NotStored || DateTimeOffset.UtcNow > due[i].GiveUpAt)
                {
                    // A newer token is there (a later write raised it), or the old clean token has expired: nothing to do.
                    done.Add(due[i]);
                }
            }

            if (publishes.Count > 0)
            {
                await _coherence.ExecuteAsync(publishes, async: true, CancellationToken.None).ConfigureAwait(false);
            }

            lock (_pending)
            {
                foreach (Pending p in done)
                {
                    _pending.Remove(p);
                }
            }

            if (done.Count < due.Length)
            {
                Log.LateRaisesPending(_coherence.Logger, due.Length - done.Count);
                await Task.Delay(delay, stopping).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(LastRetry.Ticks, delay.Ticks * 2));
            }
            else
            {
                delay = FirstRetry;
            }
        }
    }

    private sealed record Pending(string Key, long Version, SharedToken Published, TimeSpan Ttl, DateTimeOffset GiveUpAt);
}
