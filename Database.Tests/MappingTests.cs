using Microsoft.Data.Sqlite;
using SharedEntities.AdoNet;
using SharedEntities.Sqlite;
using SharedEntities.Stores;

namespace SharedEntities.Database.Tests;

/// <summary>
/// <see cref="DbEntityMapping"/> refuses names no database can take, before any statement is built; conversions apply
/// to what the loader writes and reads back.
/// </summary>
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
    public void A_conversion_of_a_property_that_is_not_shared_and_a_type_that_is_not_an_entity_are_refused()
    {
        ArgumentException property = Assert.Throws<ArgumentException>(
            () => DbEntityMapping.For<Sheet>().WithConversion("Id", typeof(long), v => v, v => v));
        Assert.Equal("property", property.ParamName);
        Assert.Contains("Sheet has no shared property Id (shared: Title)", property.Message, StringComparison.Ordinal);

        ArgumentException type = Assert.Throws<ArgumentException>(() => DbEntityMapping.ForType(typeof(string)));
        Assert.Equal("entityType", type.ParamName);
    }

    [Fact]
    public async Task A_converted_column_is_written_and_read_back_through_its_conversion()
    {
        using var folder = new TempFolder();
        string connectionString = $"Data Source={folder.File("app.db")}";
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        using (SqliteCommand create = connection.CreateCommand())
        {
            create.CommandText = "CREATE TABLE sheets (Id INTEGER PRIMARY KEY, Version BIGINT NOT NULL, Title TEXT NOT NULL)";
            create.ExecuteNonQuery();
        }

        // Stored reversed: what the column holds is not what the property holds.
        static string Reverse(object text) => new([.. ((string)text).Reverse()]);
        DbEntityMapping mapping = DbEntityMapping.For<Sheet>("sheets").WithConversion(nameof(Sheet.Title), typeof(string), Reverse, Reverse);
        using var coherence = new Coherence(new InMemorySharedStore());
        var loader = new DbEntityLoader(coherence, connection, SqliteDialect.Instance, mapping);
        await using (coherence.BeginScope())
        {
            await loader.InsertAsync(new Sheet { Id = 1, Title = "Q1 plan" });
        }

        using (SqliteCommand read = connection.CreateCommand())
        {
            read.CommandText = "SELECT Title FROM sheets WHERE Id = 1";
            Assert.Equal("nalp 1Q", read.ExecuteScalar());
        }

        using var other = new Coherence(new InMemorySharedStore());
        var reader = new DbEntityLoader(other, connection, SqliteDialect.Instance, mapping);
        await using (other.BeginScope())
        {
            Sheet found = (await reader.FindAsync<Sheet>(1))!;
            Assert.Equal("Q1 plan", found.Title);
        }

        var byType = new DbEntityLoader(other, connection, SqliteDialect.Instance, DbEntityMapping.ForType(typeof(Sheet), "sheets"));
        InvalidOperationException creating = await Assert.ThrowsAsync<InvalidOperationException>(() => byType.FindAsync<Sheet>(1));
        Assert.Contains("made without a constructor (DbEntityMapping.ForType)", creating.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ordinary_names_with_quotes_and_non_ascii_letters_are_kept()
    {
        DbEntityMapping mapping = DbEntityMapping.For<Sheet>(table: "feuille \"été\"", columns: new Dictionary<string, string> { ["Title"] = "titre" });
        Assert.Equal("feuille \"été\"", mapping.Table);
        Assert.Equal(["titre"], mapping.Columns);
    }
}
