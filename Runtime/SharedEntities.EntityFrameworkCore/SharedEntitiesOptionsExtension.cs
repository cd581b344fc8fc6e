using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Microsoft.EntityFrameworkCore.Query;
using Microsoft.EntityFrameworkCore.Query.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace SharedEntities.EntityFrameworkCore;

/// <summary>
/// Registers the model convention and the materializer (<see cref="SharedEntitiesMaterializerSource"/>) in EF Core's
/// internal services. Holds no per-context state.
/// </summary>
internal sealed class SharedEntitiesOptionsExtension : IDbContextOptionsExtension
{
    private ExtensionInfo? _info;

    public DbContextOptionsExtensionInfo Info => _info ??= new ExtensionInfo(this);

    public void ApplyServices(IServiceCollection services)
    {
        new EntityFrameworkServicesBuilder(services).TryAdd<IConventionSetPlugin, SharedEntitiesConventionSetPlugin>();

        // Wraps the provider's materializer: the one it registered if its options came first, else the one every
        // relational provider uses (its registration, which comes later, then finds ours and adds nothing).
        ServiceDescriptor? provider = services.LastOrDefault(d => d.ServiceType == typeof(IStructuralTypeMaterializerSource));
        Func<IServiceProvider, IStructuralTypeMaterializerSource> inner = provider switch
        {
#pragma warning disable EF1001 // the relational materializer is EF Core's internal type; it is only constructed here, as EF Core's own registration would
            null => static sp => ActivatorUtilities.CreateInstance<RelationalStructuralTypeMaterializerSource>(sp),
#pragma warning restore EF1001
            { ImplementationInstance: IStructuralTypeMaterializerSource instance } => _ => instance,
            { ImplementationFactory: { } factory } => sp => (IStructuralTypeMaterializerSource)factory(sp),
            { ImplementationType: { } type } => sp => (IStructuralTypeMaterializerSource)ActivatorUtilities.CreateInstance(sp, type),
            _ => throw new InvalidOperationException($"The EF Core provider registered {provider} as its materializer, which SharedEntities cannot wrap."),
        };
        services.Replace(ServiceDescriptor.Singleton<IStructuralTypeMaterializerSource>(sp => new SharedEntitiesMaterializerSource(inner(sp))));
    }

    /// <summary>When the context is built: a provider without connections and transactions is refused then, not at its first save.</summary>
    public void Validate(IDbContextOptions options)
    {
        if (options.Extensions.FirstOrDefault(e => e.Info.IsDatabaseProvider) is { } provider && provider is not RelationalOptionsExtension)
        {
            throw new NotSupportedException(SharedEntitiesContexts.NotRelational(provider.GetType().Assembly.GetName().Name ?? provider.GetType().Name));
        }
    }

    private sealed class ExtensionInfo(IDbContextOptionsExtension extension) : DbContextOptionsExtensionInfo(extension)
    {
        public override bool IsDatabaseProvider => false;

        public override string LogFragment => "using SharedEntities ";

        public override int GetServiceProviderHashCode() => 0;

        public override bool ShouldUseSameServiceProvider(DbContextOptionsExtensionInfo other) => other is ExtensionInfo;

        public override void PopulateDebugInfo(IDictionary<string, string> debugInfo) => debugInfo["SharedEntities"] = "1";
    }
}
