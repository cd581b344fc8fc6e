using System.Runtime.CompilerServices;

// The connection, pool, ring and breaker are tested directly: faults are easier to provoke one layer down.
[assembly: InternalsVisibleTo("SharedEntities.Memcached.Tests")]
