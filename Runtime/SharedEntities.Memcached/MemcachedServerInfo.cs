namespace SharedEntities.Memcached;

/// <summary>
/// What a server said about itself at connect: its version, and which optional meta flags it accepts. memcached
/// 1.6.18 (Debian 12's) accepts neither <c>E</c> nor <c>md … x</c>; the client finds out by asking, not by version.
/// </summary>
/// <param name="Version">The version the server reported.</param>
/// <param name="SupportsCasOverride">The <c>E&lt;cas&gt;</c> flag (client-chosen CAS values).</param>
/// <param name="SupportsValueRemoval">The <c>x</c> flag of <c>md</c> (empty the value, keep the item).</param>
internal sealed record MemcachedServerInfo(Version Version, bool SupportsCasOverride, bool SupportsValueRemoval)
{
    /// <summary>The oldest version whose meta protocol the client relies on.</summary>
    public static Version MinimumVersion { get; } = new(1, 6, 0);

    /// <summary>Reads <c>1.6.18</c> (or <c>1.6.18-dev</c>) from a <c>VERSION</c> line's argument; null if unreadable.</summary>
    public static Version? ParseVersion(string text)
    {
        int end = 0;
        while (end < text.Length && (char.IsAsciiDigit(text[end]) || text[end] == '.'))
        {
            end++;
        }

        return Version.TryParse(text.AsSpan(0, end), out Version? version) ? version : null;
    }
}
