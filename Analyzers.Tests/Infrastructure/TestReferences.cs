using System.Collections.Immutable;
using Basic.Reference.Assemblies;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;

namespace SharedEntities.Analyzers.Tests.Infrastructure;

/// <summary>What test sources compile against: the .NET 10 reference assemblies (offline) and the runtime assembly.</summary>
internal static class TestReferences
{
    public static ImmutableArray<MetadataReference> All { get; } =
    [
        .. Net100.References.All,
        MetadataReference.CreateFromFile(typeof(Coherence).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(Microsoft.Extensions.Logging.ILogger).Assembly.Location),
    ];

    /// <summary>The .NET 10 references without the runtime: a project that does not use SharedEntities.</summary>
    public static ImmutableArray<MetadataReference> WithoutRuntime { get; } = [.. Net100.References.All];

    /// <summary>No package resolution: <see cref="All"/> is added explicitly.</summary>
    public static ReferenceAssemblies None { get; } = new(string.Empty);
}
