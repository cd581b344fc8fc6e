namespace SharedEntities.Generator;

/// <summary>The names of the generator's incremental steps, for <c>WithTrackingName</c> and the caching tests.</summary>
internal static class TrackingNames
{
    /// <summary>The model built from each <c>[SharedEntity]</c> declaration (null when nothing is to be generated).</summary>
    public const string Extract = "SharedEntities.Extract";

    /// <summary>The models that produce a file.</summary>
    public const string RemoveNulls = "SharedEntities.RemoveNulls";
}
