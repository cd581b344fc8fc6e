using Microsoft.Extensions.Options;

namespace SharedEntities.DependencyInjection;

/// <summary>Turns an options class's own <c>Validate()</c> (which throws <see cref="ArgumentException"/>) into options validation.</summary>
internal sealed class OptionsValidator<TOptions>(Action<TOptions> validate) : IValidateOptions<TOptions>
    where TOptions : class
{
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        try
        {
            validate(options);
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException ex)
        {
            return ValidateOptionsResult.Fail(ex.Message);
        }
    }
}
