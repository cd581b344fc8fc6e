namespace SharedEntities;

/// <summary>Describes one shared (generated) property of a <see cref="SharedEntityType"/>.</summary>
/// <param name="Name">The property name.</param>
/// <param name="PropertyType">The property's CLR type.</param>
/// <param name="FieldName">
/// The generated backing field. Loaders that materialize rows (EF Core among them) write this field so that loading
/// is not mistaken for a user's write.
/// </param>
public sealed record SharedPropertyInfo(string Name, Type PropertyType, string FieldName);
