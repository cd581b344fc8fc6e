namespace SharedEntities.Tests.Postgres;

// Linked into every test project that uses the cluster: a collection fixture lives in its test assembly.
/// <summary>The test collection that shares one <see cref="PostgresCluster"/> per test assembly.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresFixture : ICollectionFixture<PostgresCluster>
{
    public const string Name = "postgres";
}
