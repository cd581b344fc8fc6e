using SharedEntities.Protocol;
using SharedEntities.Stores;

namespace SharedEntities.Tests.Worker;

/// <summary>
/// A store in front of the real one that kills its process (SIGKILL, no clean-up) when the <c>n</c>-th batch with a
/// publish arrives: the runtime sends it right after the database commit, so the process dies between commit and
/// publish, leaving a dirty token. The commit is logged first, as the worker would have logged it.
/// </summary>
internal sealed class DieBeforePublishStore(ISharedStore inner, int dieAt, StreamWriter log) : ISharedStore
{
    private int _publishes;

    public void Execute(StoreBatch batch)
    {
        DieIfDue(batch);
        inner.Execute(batch);
    }

    public ValueTask ExecuteAsync(StoreBatch batch, CancellationToken cancellationToken = default)
    {
        DieIfDue(batch);
        return inner.ExecuteAsync(batch, cancellationToken);
    }

    private void DieIfDue(StoreBatch batch)
    {
        foreach (StoreOperation operation in batch.Operations)
        {
            if (operation.Kind == StoreOperationKind.Publish && ++_publishes == dieAt)
            {
                long version = new SharedToken(operation.Value).Version;
                log.WriteLine($"commit {version} {DateTime.UtcNow.Ticks}");
                log.Flush();
                System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
        }
    }
}
