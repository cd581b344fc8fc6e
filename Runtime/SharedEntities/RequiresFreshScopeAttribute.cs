namespace SharedEntities;

/// <summary>
/// Declares that a method, constructor, property or local function only runs inside a <see cref="FreshScope"/>:
/// shared-property reads in its body count as inside a scope, and analyzer SE0102 reports calls to it from outside one.
/// </summary>
[AttributeUsage(
    AttributeTargets.Method | AttributeTargets.Constructor | AttributeTargets.Property,
    Inherited = true,
    AllowMultiple = false)]
public sealed class RequiresFreshScopeAttribute : Attribute;
