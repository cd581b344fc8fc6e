using System.Reflection;
using SharedEntities;

namespace SharedEntities.Generator.Tests;

/// <summary>An entity generated into this very assembly, driven through <see cref="ISharedEntity"/>.</summary>
public sealed class BehaviourTests
{
    [Fact]
    public void Descriptor_lists_the_shared_properties_in_declaration_order()
    {
        ISharedEntity sheet = new SmokeSheet();
        SharedEntityType type = sheet.SharedType;

        Assert.Equal("SmokeSheet", type.Name);
        Assert.Equal(typeof(SmokeSheet), type.ClrType);
        Assert.Equal("Id", type.KeyProperty);
        Assert.Equal("Version", type.VersionProperty);
        Assert.Equal(SharedEntityMode.Versioned, type.Mode);
        Assert.Equal(["Title", "Rows", "Total", "LastModified", "Tags"], type.Properties.Select(p => p.Name));
        Assert.Equal([typeof(string), typeof(int), typeof(long), typeof(DateTime?), typeof(List<string?>)], type.Properties.Select(p => p.PropertyType));
        Assert.Same(type, new SmokeSheet().As<ISharedEntity>().SharedType);
    }

    [Fact]
    public void Field_names_name_real_fields_of_the_property_type()
    {
        foreach (SharedPropertyInfo property in new SmokeSheet().As<ISharedEntity>().SharedType.Properties)
        {
            FieldInfo? field = typeof(SmokeSheet).GetField(property.FieldName, BindingFlags.Instance | BindingFlags.NonPublic);
            Assert.NotNull(field);
            Assert.Equal(property.PropertyType, field.FieldType);
        }
    }

    [Fact]
    public void Values_round_trip_through_the_index_accessors_with_their_own_types()
    {
        SmokeSheet sheet = new() { Id = 7, Title = "Q3", Rows = 3, Total = 4_000_000_000L, LastModified = new DateTime(2026, 11, 22) };
        ISharedEntity entity = sheet;

        Assert.Equal("Q3", entity.GetSharedValue(0));
        Assert.IsType<int>(entity.GetSharedValue(1)); // not widened to the other arms' type
        Assert.Equal(3, entity.GetSharedValue(1));
        Assert.Equal(4_000_000_000L, entity.GetSharedValue(2));
        Assert.Equal(new DateTime(2026, 11, 22), entity.GetSharedValue(3));
        Assert.Null(entity.GetSharedValue(4));

        entity.SetSharedValue(0, "Q4");
        entity.SetSharedValue(1, 5);
        entity.SetSharedValue(2, 6L);
        entity.SetSharedValue(3, null);
        entity.SetSharedValue(4, new List<string?> { "a", null });
        Assert.Equal("Q4", sheet.Title);
        Assert.Equal(5, sheet.Rows);
        Assert.Equal(6L, sheet.Total);
        Assert.Null(sheet.LastModified);
        Assert.Equal(["a", null], sheet.Tags);

        for (int i = 0; i < entity.SharedType.Properties.Length; i++)
        {
            entity.SetSharedValue(i, entity.GetSharedValue(i));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => entity.GetSharedValue(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => entity.SetSharedValue(-1, null));
        Assert.Throws<InvalidCastException>(() => entity.SetSharedValue(1, 5L));
    }

    [Fact]
    public void Key_version_and_state_are_exposed()
    {
        SmokeSheet sheet = new() { Id = 42, Version = 9 };
        IVersionedSharedEntity entity = sheet;

        Assert.Equal(42, entity.SharedKey);
        Assert.Equal(9L, entity.SharedVersion);
        entity.SharedVersion = 10;
        Assert.Equal(10L, sheet.Version);
        Assert.Null(entity.SharedState);
    }

    [Fact]
    public void Int_version_is_widened_and_narrowed_with_a_check()
    {
        IntVersionSheet sheet = new() { Key = "k", Version = 3 };
        IVersionedSharedEntity entity = sheet;

        Assert.Equal("IntVersionSheet", entity.SharedType.Name);
        Assert.Equal("Key", entity.SharedType.KeyProperty);
        Assert.Equal(3L, entity.SharedVersion);
        entity.SharedVersion = int.MaxValue;
        Assert.Equal(int.MaxValue, sheet.Version);
        Assert.Throws<OverflowException>(() => entity.SharedVersion = int.MaxValue + 1L);
    }

    [Fact]
    public void An_entity_without_version_is_serial_only()
    {
        ISharedEntity entity = new SerialNote { SerialNoteId = Guid.Empty, Text = "x" };

        Assert.IsNotAssignableFrom<IVersionedSharedEntity>(entity);
        Assert.Equal("notes", entity.SharedType.Name);
        Assert.Equal(SharedEntityMode.SerialOnly, entity.SharedType.Mode);
        Assert.Equal(Guid.Empty, entity.SharedKey);
        Assert.Equal("x", entity.GetSharedValue(0));
    }

    [Fact]
    public void Detached_accessors_behave_as_plain_properties()
    {
        // With no state attached, OnRead/OnWrite do nothing: a new object is a plain object.
        SmokeSheet sheet = new() { Title = "a" };
        sheet.Title += "b";
        Assert.Equal("ab", sheet.Title);
        Assert.Equal("", sheet.LocalNote);
    }
}

[SharedEntity]
public partial class SmokeSheet
{
    public int Id { get; set; }

    public long Version { get; set; }

    public partial string Title { get; set; }

    public partial int Rows { get; set; }

    public partial long Total { get; set; }

    public partial DateTime? LastModified { get; set; }

    public partial List<string?> Tags { get; set; }

    public string LocalNote { get; set; } = "";
}

[SharedEntity]
public partial class IntVersionSheet
{
    [System.ComponentModel.DataAnnotations.Key]
    public string Key { get; set; } = "";

    public int Version { get; set; }

    public partial string Title { get; set; }
}

[SharedEntity(Name = "notes")]
public partial class SerialNote
{
    public Guid SerialNoteId { get; set; }

    public partial string Text { get; set; }
}

internal static class EntityExtensions
{
    public static T As<T>(this object value) => (T)value;
}
