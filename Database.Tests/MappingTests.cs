using SharedEntities.AdoNet;

namespace SharedEntities.Database.Tests;

/// <summary><see cref="DbEntityMapping"/> refuses names no database can take, before any statement is built.</summary>
public sealed class MappingTests
{
    [Fact]
    public void A_nul_in_the_table_name_is_refused_with_the_name_escaped()
    {
        ArgumentException refused = Assert.Throws<ArgumentException>(() => DbEntityMapping.For<Sheet>(table: "sheets\0old"));
        Assert.Equal("table", refused.ParamName);
        Assert.Contains("\"sheets\\u0000old\"", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\0', refused.Message);
    }

    [Theory]
    [InlineData("key\0", null, null, "keyColumn", "key\\u0000")]
    [InlineData(null, "Ver\u001bsion", null, "versionColumn", "Ver\\u001bsion")]
    [InlineData(null, null, "Ti\ttle", "columns", "Ti\\u0009tle")]
    public void A_control_character_in_a_column_name_is_refused_naming_the_parameter(
        string? keyColumn, string? versionColumn, string? titleColumn, string parameter, string shown)
    {
        Dictionary<string, string>? columns = titleColumn is null ? null : new() { ["Title"] = titleColumn };
        ArgumentException refused = Assert.Throws<ArgumentException>(
            () => DbEntityMapping.For<Sheet>(table: "sheets", keyColumn: keyColumn, versionColumn: versionColumn, columns: columns));
        Assert.Equal(parameter, refused.ParamName);
        Assert.Contains(shown, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ordinary_names_with_quotes_and_non_ascii_letters_are_kept()
    {
        DbEntityMapping mapping = DbEntityMapping.For<Sheet>(table: "feuille \"été\"", columns: new Dictionary<string, string> { ["Title"] = "titre" });
        Assert.Equal("feuille \"été\"", mapping.Table);
        Assert.Equal(["titre"], mapping.Columns);
    }
}
