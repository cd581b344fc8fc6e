using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Xunit.Sdk;

namespace SharedEntities.Generator.Tests.Infrastructure;

/// <summary>
/// Walks a model's object graph (fields, recursively into collections) and fails if a Roslyn object that would pin a
/// compilation in the incremental cache, or break its equality, is reachable — or could be, by a field's declared type.
/// </summary>
internal static class ModelGraph
{
    private static readonly Type[] Banned =
    [
        typeof(Compilation),
        typeof(ISymbol),
        typeof(SyntaxNode),
        typeof(SyntaxTree),
        typeof(Location),
        typeof(SemanticModel),
    ];

    public static void AssertNoRoslynObjects(object? root, string rootName)
        => Visit(root, rootName, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static void Visit(object? value, string path, HashSet<object> visited)
    {
        if (value is null)
        {
            return;
        }

        Type type = value.GetType();
        FailIfBanned(type, path);
        if (type.IsPrimitive || type.IsEnum || value is string or decimal)
        {
            return;
        }

        if (!type.IsValueType && !visited.Add(value))
        {
            return;
        }

        if (value is IEnumerable items)
        {
            int index = 0;
            foreach (object? item in items)
            {
                Visit(item, $"{path}[{index++}]", visited);
            }
        }

        for (Type? current = type; current is not null && current != typeof(object); current = current.BaseType)
        {
            foreach (FieldInfo field in current.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                FailIfBanned(field.FieldType, $"{path}.{field.Name} (declared type)");
                if (!field.FieldType.IsPointer && !field.FieldType.IsByRefLike)
                {
                    Visit(field.GetValue(value), $"{path}.{field.Name}", visited);
                }
            }
        }
    }

    private static void FailIfBanned(Type type, string path)
    {
        Type elementType = type.IsArray ? type.GetElementType()! : type;
        foreach (Type banned in Banned)
        {
            if (banned.IsAssignableFrom(elementType))
            {
                throw new XunitException($"The model reaches a {banned.Name}: {path} is a {type.FullName}.");
            }
        }
    }
}
