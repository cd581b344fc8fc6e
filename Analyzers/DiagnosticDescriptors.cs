using Microsoft.CodeAnalysis;

namespace SharedEntities.Analyzers;

/// <summary>The descriptors of every rule. Titles and messages say what is wrong and how to fix it.</summary>
internal static class DiagnosticDescriptors
{
    private const string Declaration = "SharedEntities.Declaration";
    private const string Usage = "SharedEntities.Usage";

    /// <summary>SE0001.</summary>
    public static readonly DiagnosticDescriptor TypeNotPartial = Create(
        DiagnosticIds.TypeNotPartial,
        "A [SharedEntity] type must be partial",
        "'{0}' is marked [SharedEntity] but is not declared partial: the generator cannot add its shared accessors",
        Declaration,
        DiagnosticSeverity.Error);

    /// <summary>SE0002.</summary>
    public static readonly DiagnosticDescriptor ContainingTypeNotPartial = Create(
        DiagnosticIds.ContainingTypeNotPartial,
        "A type containing a [SharedEntity] type must be partial",
        "'{0}' contains the [SharedEntity] type '{1}' but is not declared partial: the generator cannot add a part to '{1}'",
        Declaration,
        DiagnosticSeverity.Error);

    /// <summary>SE0003.</summary>
    public static readonly DiagnosticDescriptor NoKey = Create(
        DiagnosticIds.NoKey,
        "A [SharedEntity] type needs a key",
        "'{0}' {1}",
        Declaration,
        DiagnosticSeverity.Error);

    /// <summary>SE0004.</summary>
    public static readonly DiagnosticDescriptor UnsupportedSharedProperty = Create(
        DiagnosticIds.UnsupportedSharedProperty,
        "Shared property shape not supported",
        "The partial property '{0}' cannot be shared: {1}",
        Declaration,
        DiagnosticSeverity.Error);

    /// <summary>SE0005.</summary>
    public static readonly DiagnosticDescriptor UnsupportedTypeKind = Create(
        DiagnosticIds.UnsupportedTypeKind,
        "[SharedEntity] cannot be applied to this type",
        "'{0}' cannot be a shared entity: {1}",
        Declaration,
        DiagnosticSeverity.Error);

    /// <summary>SE0006.</summary>
    public static readonly DiagnosticDescriptor KeyOrVersionNotPlain = Create(
        DiagnosticIds.KeyOrVersionNotPlain,
        "The key and the version must be plain read-write properties",
        "'{0}' is the {1} of '{2}' and {3}",
        Declaration,
        DiagnosticSeverity.Error);

    /// <summary>SE0100.</summary>
    public static readonly DiagnosticDescriptor ReadOutsideScope = Create(
        DiagnosticIds.ReadOutsideScope,
        "Shared property read outside a fresh scope",
        "'{0}' is read outside a fresh scope: each such read checks the store again (or throws, by option); begin a scope with Coherence.BeginScope() around it, or mark the method [RequiresFreshScope]",
        Usage,
        DiagnosticSeverity.Warning);

    /// <summary>SE0101.</summary>
    public static readonly DiagnosticDescriptor RefreshInsideSnapshot = Create(
        DiagnosticIds.RefreshInsideSnapshot,
        "Refresh inside a transaction that has already read sees the old snapshot",
        "{0} runs inside the {1} transaction begun on line {2}, which has already read: it sees that transaction's snapshot, not the newest commit; commit or roll back the transaction first, or check before it begins",
        Usage,
        DiagnosticSeverity.Warning);

    /// <summary>SE0102.</summary>
    public static readonly DiagnosticDescriptor RequiresFreshScopeCall = Create(
        DiagnosticIds.RequiresFreshScopeCall,
        "Member requiring a fresh scope used outside one",
        "'{0}' is marked [RequiresFreshScope] but is used outside a fresh scope; begin a scope around it, or mark the calling method [RequiresFreshScope]",
        Usage,
        DiagnosticSeverity.Warning);

    /// <summary>SE0103.</summary>
    public static readonly DiagnosticDescriptor WriteOutsideScope = Create(
        DiagnosticIds.WriteOutsideScope,
        "Shared property written outside a fresh scope",
        "'{0}' is written outside a fresh scope: no scope commit will write and publish the change; write it inside a scope and commit the scope",
        Usage,
        DiagnosticSeverity.Warning);

    private static DiagnosticDescriptor Create(string id, string title, string message, string category, DiagnosticSeverity severity)
        => new(
            id,
            title,
            message,
            category,
            severity,
            isEnabledByDefault: true,
            description: null,
            helpLinkUri: AnalyzerInfo.HelpLinkBase + id + ".md");
}
