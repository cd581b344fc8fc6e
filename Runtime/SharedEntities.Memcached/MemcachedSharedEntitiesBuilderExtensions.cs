using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharedEntities.DependencyInjection;
using SharedEntities.Memcached;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Chooses memcached as the store of the <see cref="SharedEntities.Coherence"/> that <c>AddSharedEntities</c> registered.</summary>
public static class MemcachedSharedEntitiesBuilderExtensions
{
    /// <summary>The production store: memcached servers, e.g. <c>"10.0.0.1:11211,10.0.0.2:11211"</c> (<c>host:port weight</c> entries allowed).</summary>
    public static SharedEntitiesBuilder UseMemcached(this SharedEntitiesBuilder builder, string servers)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(servers);
        return builder.UseMemcached(options => options.Servers = servers);
    }

    /// <summary>The production store, with every client setting (validated at start like the runtime's options).</summary>
    public static SharedEntitiesBuilder UseMemcached(this SharedEntitiesBuilder builder, Action<MemcachedClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<MemcachedClientOptions>().Configure(configure).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MemcachedClientOptions>, ClientOptionsValidator>());
        return builder.UseStore(static provider => new MemcachedStore(
            provider.GetRequiredService<IOptions<MemcachedClientOptions>>().Value,
            provider.GetService<ILogger<MemcachedStore>>(),
            provider.GetService<IMeterFactory>()));
    }

    // The options' own Validate() throws ArgumentException naming the setting; options validation reports its message.
    private sealed class ClientOptionsValidator : IValidateOptions<MemcachedClientOptions>
    {
        public ValidateOptionsResult Validate(string? name, MemcachedClientOptions options)
        {
            try
            {
                options.Validate();
                return ValidateOptionsResult.Success;
            }
            catch (ArgumentException ex)
            {
                return ValidateOptionsResult.Fail(ex.Message);
            }
        }
    }
}
