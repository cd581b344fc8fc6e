using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using SharedEntities.Generator.Tests.Infrastructure;
using Xunit.Sdk;

namespace SharedEntities.Generator.Tests;

/// <summary>The test helpers can fail: a model walker or caching check that never finds anything would prove nothing.</summary>
public sealed class InfrastructureTests
{
    private sealed record Holder(object? Value, IReadOnlyList<object?> Items);

    private sealed record TypedHolder(ISymbol? Symbol);

    [Fact]
    public void Model_walk_finds_a_symbol_inside_a_collection()
    {
        ISymbol symbol = GeneratorHarness.CreateCompilation("class C { }").GetTypeByMetadataName("C")!;
        Holder holder = new("text", [1, new Holder(null, [symbol])]);

        XunitException failure = Assert.ThrowsAny<XunitException>(() => ModelGraph.AssertNoRoslynObjects(holder, "model"));
        Assert.Contains("ISymbol", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Model_walk_finds_a_field_typed_as_syntax_even_when_null()
        => Assert.ThrowsAny<XunitException>(() => ModelGraph.AssertNoRoslynObjects(new TypedHolder(null), "model"));

    [Fact]
    public void Model_walk_accepts_plain_data()
        => ModelGraph.AssertNoRoslynObjects(new Holder("text", [1, "two", new Holder(3.0, [])]), "model");

    [Fact]
    public void Caching_check_fails_when_an_edit_changes_a_model()
    {
        const string Source = "using SharedEntities; [SharedEntity] public partial class Sheet { public int Id { get; set; } public partial string Title { get; set; } }";
        Compilation compilation = GeneratorHarness.CreateCompilation(Source);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        GeneratorDriverRunResult first = driver.GetRunResult();

        SyntaxTree tree = compilation.SyntaxTrees.Single();
        Compilation renamed = compilation.ReplaceSyntaxTree(tree, tree.WithChangedText(SourceText.From(Source.Replace("Title", "Caption", StringComparison.Ordinal))));
        GeneratorDriverRunResult second = driver.RunGenerators(renamed).GetRunResult();

        XunitException failure = Assert.ThrowsAny<XunitException>(() => CachingCheck.AssertCached(first, second, "after renaming"));
        Assert.Contains("Modified", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Line_diff_marks_removed_and_added_lines()
    {
        string diff = LineDiff.Format("a\nb\nc\n", "a\nB\nc\nd\n");
        Assert.Equal("  a\n- b\n+ B\n  c\n+ d\n  \n", diff);
    }
}
