#!/usr/bin/env bash
# Measures what the SharedEntities analyzers add to compiling a 1,000-entity project that uses them heavily
# (issue 5, item 8; goal: at most 3% of the compile).
#
#   bash bench/analyzer-cost/measure.sh [entities=1000] [runs=3]
#
# It generates the project under $WORK (default: a temporary folder outside the repository, so the repository's
# Directory.Build.props does not apply), builds the generator and analyzers once, then compiles the project `runs`
# times with the analyzers and `runs` times without them (the generator always runs), alternating, each a full
# recompile of that one project with -p:ReportAnalyzer=true. It prints the compiler's per-analyzer times and the
# Csc task times. Nothing here is a test: timings on a shared machine vary; read the medians.
set -euo pipefail

entities=${1:-1000}
runs=${2:-3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-$(mktemp -d /tmp/se-analyzer-cost.XXXXXX)}
project="$work/Consumer"
mkdir -p "$project/Entities" "$project/Services"

cat > "$project/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <LangVersion>latest</LangVersion>
    <OutputType>Library</OutputType>
    <!-- The generated code uses the analyzers on purpose: every rule has work, and each reports (a suppressed rule is
         not run at all, so none is suppressed here; the warnings stay warnings). -->
    <TreatWarningsAsErrors>false</TreatWarningsAsErrors>
    <NoWarn>\$(NoWarn);CS1591</NoWarn>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
  </PropertyGroup>
  <ItemGroup>
    <ProjectReference Include="$repo/Runtime/SharedEntities/SharedEntities.csproj" />
    <ProjectReference Include="$repo/Generator/SharedEntities.Generator.csproj" OutputItemType="Analyzer" ReferenceOutputAssembly="false" />
    <ProjectReference Include="$repo/Analyzers/SharedEntities.Analyzers.csproj" OutputItemType="Analyzer" ReferenceOutputAssembly="false"
                      Condition="'\$(WithoutSharedEntitiesAnalyzers)' != 'true'" />
  </ItemGroup>
</Project>
XML

for ((i = 0; i < entities; i++)); do
  cat > "$project/Entities/Sheet$i.cs" <<CS
using SharedEntities;

namespace Consumer.Entities;

[SharedEntity]
public partial class Sheet$i
{
    public int Id { get; set; }
    public long Version { get; set; }
    public partial string Title { get; set; }
    public partial DateTime LastModified { get; set; }
    public partial int Cells { get; set; }
    public partial decimal Total { get; set; }
    public partial string? Owner { get; set; }
    public string LocalNote { get; set; } = "";

    public string Describe() => Title + " " + LastModified + " " + Cells;
}
CS

  cat > "$project/Services/Sheet${i}Service.cs" <<CS
using System.Data;
using System.Data.Common;
using SharedEntities;
using Consumer.Entities;

namespace Consumer.Services;

public sealed class Sheet${i}Service(Coherence coherence)
{
    public async Task<string> RecalculateAsync(Sheet$i sheet, DateTime started, CancellationToken cancellationToken)
    {
        await using var scope = coherence.BeginScope();
        if (sheet.LastModified > started)
        {
            return "recalc aborted";
        }

        sheet.Cells += 1;
        sheet.Total = sheet.Cells * 2m;
        sheet.Title = sheet.Title?.Trim() ?? "";
        await scope.CommitAsync(cancellationToken);
        return sheet.Describe();
    }

    public Task<string> RetryAsync(Sheet$i sheet) => coherence.RunInScopeAsync(async (scope, ct) =>
    {
        await scope.CheckAsync(ct);
        sheet.Owner ??= "nobody";
        return sheet is { Cells: > 3, Title: var title } ? title : nameof(Sheet$i.Title);
    }, maxAttempts: 3);

    [RequiresFreshScope]
    public string Render(Sheet$i sheet) => sheet.Title + sheet.Total + sheet.Owner?.Length;

    public string Page(Sheet$i sheet)
    {
        using (coherence.BeginScope())
        {
            return Render(sheet);
        }
    }

    public string Outside(Sheet$i sheet) => sheet.Title + Render(sheet);

    public void Write(Sheet$i sheet) => sheet.Title = "x";

    public Sheet$i Create() => new() { Id = $i, Title = "new" };

    public Func<string> Later(Sheet$i sheet)
    {
        using var scope = coherence.BeginScope();
        return () => sheet.Title;
    }

    public async Task<bool> SnapshotAsync(DbConnection connection, FreshScope scope)
    {
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead);
        using var command = connection.CreateCommand();
        command.CommandText = "select version from sheet$i";
        _ = await command.ExecuteScalarAsync();
        await scope.CheckAsync();
        await transaction.CommitAsync();
        await scope.CheckAsync();
        return true;
    }
}
CS
done

echo "generated $entities entities and services under $project"
cd "$project"
dotnet build -nologo -v:q > "$work/first-build.log" 2>&1 || { tail -40 "$work/first-build.log"; exit 1; }

measure() { # $1: label, $2: extra property
  local log="$work/$1-$3.log"
  touch "$project/Consumer.csproj"
  dotnet build -nologo --no-restore -p:BuildProjectReferences=false -p:ReportAnalyzer=true $2 \
    -t:Rebuild -v:d -clp:PerformanceSummary > "$log" 2>&1 || { tail -40 "$log"; exit 1; }
  local csc total ours warnings
  # '|| true': a pattern that finds nothing (our analyzers in a run without them, no warnings) is not an error here.
  csc=$(grep -E '^\s+[0-9]+ ms\s+Csc\s+1 calls' "$log" | awk '{print $1}' | head -1) || true
  total=$(grep -m1 -E 'Total analyzer execution time:' "$log" | grep -oE '[0-9]+([.,][0-9]+)?' | head -1) || true
  ours=$(grep -E '^\s+[0-9.,<]+\s+[0-9<]+\s+SharedEntities\.Analyzers' "$log" | awk '{print $1}' | head -1) || true
  warnings=$(grep -E "warning SE0[0-9]+" "$log" | sort -u | grep -oE "warning SE0[0-9]+" | sort | uniq -c | awk '{printf "%s %s; ", $3, $1}') || true
  echo "$1 run $3: Csc ${csc:-?} ms; all analyzers ${total:-?} s; SharedEntities.Analyzers ${ours:-0} s; ${warnings:-no SE warnings}"
}

for ((r = 1; r <= runs; r++)); do
  measure with "" "$r"
  measure without "-p:WithoutSharedEntitiesAnalyzers=true" "$r"
done

echo
echo "SharedEntities lines of the last run with the analyzers (compiler's ReportAnalyzer output):"
grep -E '^\s+[0-9.,<]+\s+[0-9<]+\s+SharedEntities\.' "$work/with-$runs.log" || true
echo
echo "Logs: $work"
