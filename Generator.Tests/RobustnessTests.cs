using Microsoft.CodeAnalysis;
using SharedEntities.Generator.Tests.Infrastructure;

namespace SharedEntities.Generator.Tests;

/// <summary>The generator never throws, whatever the source: half-typed code, missing types, misuse of the attribute.</summary>
public sealed class RobustnessTests
{
    private const string Usings = """
        using System;
        using System.ComponentModel.DataAnnotations;
        using SharedEntities;

        """;

    public static TheoryData<string, string> BrokenSources => new()
    {
        { "half-typed class", "[SharedEntity] public partial class" },
        { "half-typed attribute", "[SharedEntity(" },
        { "half-typed property", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get; se" },
        { "property without type", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial Title { get; set; } }" },
        { "missing property type", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial Missing Title { get; set; } }" },
        { "missing key type", "[SharedEntity] public partial class Sheet { public Missing Id { get; set; } public partial string Title { get; set; } }" },
        { "missing generic argument", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial System.Collections.Generic.List<Missing> Titles { get; set; } }" },
        { "missing base type", "[SharedEntity] public partial class Sheet : MissingBase { public partial string Title { get; set; } }" },
        { "on an enum", "[SharedEntity] public enum Kind { A, B }" },
        { "on a struct", "[SharedEntity] public partial struct Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "on an interface", "[SharedEntity] public partial interface ISheet { int Id { get; set; } partial string Title { get; set; } }" },
        { "on a record struct", "[SharedEntity] public partial record struct Sheet(int Id) { public partial string Title { get; set; } }" },
        { "on a delegate", "[SharedEntity] public delegate void Changed();" },
        { "on a method", "public partial class Sheet { [SharedEntity] public void M() { } }" },
        { "unresolved Name argument", "[SharedEntity(Name = Missing)] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "wrongly typed Name argument", "[SharedEntity(Name = 42)] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "empty Name argument", "[SharedEntity(Name = \"\")] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "positional argument", "[SharedEntity(\"Sheet\")] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "attribute repeated on two parts", "[SharedEntity] public partial class Sheet { public int Id { get; set; } } [SharedEntity] public partial class Sheet { public partial string Title { get; set; } }" },
        { "duplicate members", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public int Id { get; set; } public partial string Title { get; set; } public partial string Title { get; set; } }" },
        { "duplicate types", "[SharedEntity] public partial class Sheet { public int Id { get; set; } } [SharedEntity] public partial record Sheet { public partial string Title { get; set; } }" },
        { "duplicate accessors", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get; get; set; set; } }" },
        { "accessor without semicolon", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get set } }" },
        { "no accessors", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { } }" },
        { "write-only key", "[SharedEntity] public partial class Sheet { private int _id; public int Id { set => _id = value; } public partial string Title { get; set; } }" },
        { "partial version", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial long Version { get; set; } }" },
        { "get-only version", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public long Version { get; } public partial string Title { get; set; } }" },
        { "ref struct key", "[SharedEntity] public partial class Sheet { public Span<int> Id => default; public partial string Title { get; set; } }" },
        { "pointer property", "[SharedEntity] public unsafe partial class Sheet { public int Id { get; set; } public partial int* Cell { get; set; } }" },
        { "ref struct property", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial Span<int> Cells { get; set; } }" },
        { "abstract partial property", "[SharedEntity] public abstract partial class Sheet { public int Id { get; set; } public abstract partial string Title { get; set; } }" },
        { "explicit interface partial property", "public interface IT { string Title { get; set; } } [SharedEntity] public partial class Sheet : IT { public int Id { get; set; } partial string IT.Title { get; set; } }" },
        { "cyclic base types", "[SharedEntity] public partial class A : B { public int Id { get; set; } public partial string Title { get; set; } } public class B : A { }" },
        { "file-local entity", "[SharedEntity] file partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "generic attribute misuse", "[SharedEntity<int>] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "entity in a method", "public class Host { public void M() { [SharedEntity] partial class Sheet { } } }" },
        { "names differing only by case", "[SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } } [SharedEntity] public partial class sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
        { "namespace and type of one name", "namespace A { public partial class B { [SharedEntity] public partial class C { public int Id { get; set; } public partial string T { get; set; } } } } namespace A.B { [SharedEntity] public partial class C { public int Id { get; set; } public partial string T { get; set; } } }" },
        { "non-ASCII names", "namespace Données { [SharedEntity] public partial class Feuille\u203F1 { public int Id { get; set; } public partial string Титул { get; set; } } }" },
        { "top-level statements", "var x = 1; [SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }" },
    };

    [Theory]
    [MemberData(nameof(BrokenSources))]
    public void Generator_does_not_throw(string description, string source)
    {
        GeneratorRun run = GeneratorHarness.Run(Usings + source);

        GeneratorRunResult result = Assert.Single(run.Result.Results);
        Assert.True(result.Exception is null, $"{description}: {result.Exception}");

        // CS8784/CS8785: a generator failed to initialize or to run.
        Diagnostic[] failures = [.. run.DriverDiagnostics.Concat(run.Result.Diagnostics).Where(d => d.Id is "CS8784" or "CS8785")];
        Assert.True(failures.Length == 0, $"{description}: {GeneratorHarness.Format(failures)}");
    }

    [Theory]
    [MemberData(nameof(BrokenSources))]
    public void Generated_code_adds_no_error_of_its_own(string description, string source)
    {
        GeneratorRun run = GeneratorHarness.Run(Usings + source);

        // Whatever the user's code gets, the generated files must not add errors (no cascade from the generator).
        Diagnostic[] inGenerated = run.OutputProblems
            .Where(d => run.GeneratedSources.Any(s => s.SyntaxTree == d.Location.SourceTree))
            .ToArray();
        Assert.True(inGenerated.Length == 0, $"{description}:\n{GeneratorHarness.Format(inGenerated)}\n\n{string.Join("\n\n", run.GeneratedSources.Select(s => s.SourceText))}");
    }
}
