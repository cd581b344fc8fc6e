using System.Runtime.CompilerServices;

namespace SharedEntities.Memcached.Tests;

internal static class TestAssembly
{
    // Several tests block pool threads on purpose (the store's synchronous path, from many threads at once); on a
    // two-core machine the pool would then add threads slowly and starve the fake servers' tasks.
    [ModuleInitializer]
    internal static void WidenThreadPool() => ThreadPool.SetMinThreads(64, 64);
}
