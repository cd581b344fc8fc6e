using System.Reflection;
using Microsoft.CodeAnalysis;
using SharedEntities.Analyzers.Tests.Infrastructure;

namespace SharedEntities.Analyzers.Tests;

/// <summary>Every ID has a descriptor, an analyzer that reports it, a doc page its help link resolves to, and a release-tracking line.</summary>
public class DiagnosticCatalogTests
{
    private static readonly string[] Ids = [.. typeof(DiagnosticIds)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral)
        .Select(f => (string)f.GetRawConstantValue()!)];

    private static readonly DiagnosticDescriptor[] Descriptors = [.. typeof(DiagnosticDescriptors)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (DiagnosticDescriptor)f.GetValue(null)!)];

    private static string RepoRoot
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "SharedEntities.slnx")))
                {
                    return directory.FullName;
                }
            }

            throw new InvalidOperationException("SharedEntities.slnx not found above " + AppContext.BaseDirectory);
        }
    }

    [Fact]
    public void The_ten_IDs_of_the_design_exist()
        => Assert.Equal(
            ["SE0001", "SE0002", "SE0003", "SE0004", "SE0005", "SE0006", "SE0100", "SE0101", "SE0102", "SE0103"],
            Ids.Order());

    [Fact]
    public void Every_ID_has_exactly_one_descriptor_and_one_analyzer_that_supports_it()
    {
        Assert.Equal(Ids.Order(), Descriptors.Select(d => d.Id).Order());
        var supported = AnalyzerRun.AllAnalyzers.SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).ToList();
        Assert.Equal(Ids.Order(), supported.Order());
    }

    [Fact]
    public void Declaration_rules_are_errors_and_usage_rules_warnings()
    {
        Assert.All(Descriptors, d => Assert.Equal(
            d.Id.StartsWith("SE00", StringComparison.Ordinal) ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
            d.DefaultSeverity));
        Assert.All(Descriptors, d => Assert.True(d.IsEnabledByDefault, d.Id));
    }

    [Fact]
    public void Every_help_link_points_to_a_doc_page_that_exists()
    {
        Assert.NotEmpty(Descriptors);
        foreach (DiagnosticDescriptor descriptor in Descriptors)
        {
            string expected = "docs/diagnostics/" + descriptor.Id + ".md";
            Assert.EndsWith("/" + expected, descriptor.HelpLinkUri, StringComparison.Ordinal);
            string page = Path.Combine(RepoRoot, "docs", "diagnostics", descriptor.Id + ".md");
            Assert.True(File.Exists(page), "missing " + page);
            string text = File.ReadAllText(page);
            Assert.StartsWith("# " + descriptor.Id, text, StringComparison.Ordinal);
            foreach (string section in new[] { "## Why", "## Wrong", "## Right", "## Suppress" })
            {
                Assert.Contains(section, text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Every_ID_is_tracked_in_the_unshipped_release_with_its_category_and_severity()
    {
        string[] lines = File.ReadAllLines(Path.Combine(RepoRoot, "Analyzers", "AnalyzerReleases.Unshipped.md"));
        foreach (DiagnosticDescriptor descriptor in Descriptors)
        {
            string line = Assert.Single(lines, l => l.StartsWith(descriptor.Id + " ", StringComparison.Ordinal));
            string[] cells = [.. line.Split('|').Select(c => c.Trim())];
            Assert.Equal(descriptor.Category, cells[1]);
            Assert.Equal(descriptor.DefaultSeverity.ToString(), cells[2]);
        }
    }
}
