namespace SharedEntities.Analyzers;

/// <summary>Where the analyzers' documentation lives; every diagnostic's help link points below it.</summary>
internal static class AnalyzerInfo
{
    public const string HelpLinkBase = "https://github.com/shared-entities/shared-entities/blob/main/docs/diagnostics/";
}
