namespace SharedEntities.Internals;

/// <summary>The marking of the members that only the code the generator writes may use.</summary>
internal static class ForGeneratedCode
{
    /// <summary>The warning application code gets when it uses such a member (generated files disable it).</summary>
    public const string DiagnosticId = "SE9100";

    public const string Message = "For the code the SharedEntities generator writes; applications do not use it.";
}
