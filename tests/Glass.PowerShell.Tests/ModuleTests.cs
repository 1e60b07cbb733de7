using System.Management.Automation;
using System.Reflection;
using Glass.PowerShell.Commands;

namespace Glass.PowerShell.Tests;

/// <summary>What Import-Module Glass gives a user: the manifest's cmdlets, each saying what it outputs.</summary>
[Collection(HostedModuleCollection.Name)]
public sealed class ModuleTests(HostedModule module)
{
    /// <summary>The cmdlet classes of Glass.PowerShell.dll, by the name PowerShell gives them.</summary>
    internal static Dictionary<string, Type> CmdletTypes() =>
        typeof(GlassCmdlet).Assembly.GetExportedTypes()
            .Where(t => !t.IsAbstract && t.GetCustomAttribute<CmdletAttribute>() is not null)
            .ToDictionary(t => $"{t.GetCustomAttribute<CmdletAttribute>()!.VerbName}-{t.GetCustomAttribute<CmdletAttribute>()!.NounName}");

    private CmdletInfo Command(string name) => module.Cmdlet(name);

    [Fact]
    public void TheModuleRunsOnTheSdksSystemManagementAutomationNotTheCompileTimeReference()
    {
        // Glass.PowerShell compiles against S.M.A with ExcludeAssets=runtime: what loads must be
        // the SDK's runtime assembly, from the RID folder of this test output.
        var sma = typeof(PSObject).Assembly;
        var runtimes = Path.Combine(AppContext.BaseDirectory, "runtimes");
        Assert.StartsWith(runtimes, sma.Location);
        Assert.Equal(new Version(7, 6), new Version(sma.GetName().Version!.Major, sma.GetName().Version!.Minor));
        var version = Assert.Single(Hosted.Script(module.Shared, "$PSVersionTable.PSVersion.ToString()"));
        Assert.StartsWith("7.6.", (string)version);

        // And the module in the runspace is the very Glass.PowerShell.dll these tests reference.
        var glass = Assert.IsType<PSModuleInfo>(Assert.Single(Hosted.Script(module.Shared, "Get-Module Glass")));
        Assert.Same(typeof(GlassCmdlet).Assembly, glass.ImplementingAssembly);
        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "Glass.PowerShell.dll"), glass.Path);
        Assert.Equal(new Version(Manifest.ModuleVersion), glass.Version); // imported through the manifest, not the bare dll
    }

    [Fact]
    public void TheManifestListsEveryCmdletOfTheAssemblyAndNoOther()
    {
        var listed = Manifest.CmdletsToExport;
        Assert.Equal(listed.Distinct(StringComparer.OrdinalIgnoreCase).Count(), listed.Count);
        var inAssembly = CmdletTypes().Keys.Order(StringComparer.OrdinalIgnoreCase).ToList();
        Assert.Equal(inAssembly, listed.Order(StringComparer.OrdinalIgnoreCase).ToList(), StringComparer.OrdinalIgnoreCase);
    }

    [Fact]
    public void TheHostedModuleExportsExactlyTheManifestsCmdletsAndNothingElse()
    {
        var glass = Assert.IsType<PSModuleInfo>(Assert.Single(Hosted.Script(module.Shared, "Get-Module Glass")));
        Assert.Equal(Manifest.CmdletsToExport.Order(StringComparer.OrdinalIgnoreCase),
            glass.ExportedCmdlets.Keys.Order(StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase);
        Assert.Empty(glass.ExportedFunctions);
        Assert.Empty(glass.ExportedAliases);
        Assert.Empty(glass.ExportedVariables);
        Assert.Equal(Manifest.FormatsToProcess.Select(f => Path.Combine(AppContext.BaseDirectory, f)), glass.ExportedFormatFiles);
    }

    [Theory]
    [MemberData(nameof(Manifest.Cmdlets), MemberType = typeof(Manifest))]
    public void EveryCmdletDeclaresOutputTypesThatExist(string name)
    {
        var info = Command(name);
        Assert.NotEmpty(info.OutputType);
        foreach (var t in info.OutputType)
            Assert.True(t.Type is not null, $"{name} declares [OutputType('{t.Name}')], which names no loaded type");
    }

    [Theory]
    [MemberData(nameof(Manifest.Cmdlets), MemberType = typeof(Manifest))]
    public void EveryCmdletHasASyntaxWithOneDefaultParameterSet(string name)
    {
        var info = Command(name);
        // Building the sets throws for clashing positions or names; Get-Command -Syntax shows them.
        var sets = info.ParameterSets;
        Assert.NotEmpty(sets);
        if (sets.Count > 1)
            Assert.Single(sets, s => s.IsDefault);
        foreach (var set in sets)
        {
            var positions = set.Parameters.Where(p => p.Position >= 0).Select(p => p.Position).ToList();
            Assert.Equal(positions.Distinct().Count(), positions.Count);
        }
        var syntax = Assert.Single(Hosted.Script(module.Shared, "(Get-Command $args[0] -Syntax | Out-String).Trim()", name));
        Assert.StartsWith(name, (string)syntax);
    }

    [Theory]
    [MemberData(nameof(Manifest.Cmdlets), MemberType = typeof(Manifest))]
    public void EveryPerParameterSetOutputTypeNamesASetTheCmdletHas(string name)
    {
        // [OutputType(..., ParameterSetName = ...)] must name sets the cmdlet has, or Get-Command hides the type.
        var type = CmdletTypes()[name];
        var sets = Command(name).ParameterSets.Select(s => s.Name).ToHashSet();
        foreach (var a in type.GetCustomAttributes<OutputTypeAttribute>())
        {
            foreach (var set in a.ParameterSetName)
                Assert.True(set == ParameterAttribute.AllParameterSets || sets.Contains(set), $"{name}: [OutputType] names parameter set '{set}', which it does not have");
        }
    }
}
