namespace SharedEntities.Analyzers;

/// <summary>Every diagnostic ID the analyzers report. Each has a page in <c>docs/diagnostics/</c>, listed in its README.</summary>
internal static class DiagnosticIds
{
    /// <summary>A <c>[SharedEntity]</c> type is not <see langword="partial"/>.</summary>
    public const string TypeNotPartial = "SE0001";

    /// <summary>A type containing a <c>[SharedEntity]</c> type is not <see langword="partial"/>.</summary>
    public const string ContainingTypeNotPartial = "SE0002";

    /// <summary>A <c>[SharedEntity]</c> type has no (usable) key.</summary>
    public const string NoKey = "SE0003";

    /// <summary>A shared (partial) property has a shape the generator cannot serve.</summary>
    public const string UnsupportedSharedProperty = "SE0004";

    /// <summary><c>[SharedEntity]</c> on a kind of type it cannot serve.</summary>
    public const string UnsupportedTypeKind = "SE0005";

    /// <summary>The key or version property is declared <see langword="partial"/>, or the version cannot be read and written.</summary>
    public const string KeyOrVersionNotPlain = "SE0006";

    /// <summary>A shared property is read outside a fresh scope.</summary>
    public const string ReadOutsideScope = "SE0100";

    /// <summary>A refresh inside a transaction whose snapshot is already taken.</summary>
    public const string RefreshInsideSnapshot = "SE0101";

    /// <summary>A member marked <c>[RequiresFreshScope]</c> is used outside a fresh scope.</summary>
    public const string RequiresFreshScopeCall = "SE0102";

    /// <summary>A shared property is written outside a fresh scope.</summary>
    public const string WriteOutsideScope = "SE0103";
}
