using System.Management.Automation;
using System.Reflection;
using System.Xml.Linq;

namespace Glass.PowerShell.Tests;

/// <summary>
/// Every type a cmdlet outputs shows through a view of module/Glass.format.ps1xml, except the jobs,
/// which keep PowerShell's own Get-Job view so that mixed job lists stay uniform.
/// </summary>
[Collection(HostedModuleCollection.Name)]
public sealed class FormatViewTests(HostedModule module)
{
    private static readonly XDocument Format = XDocument.Load(Manifest.FormatPath);

    /// <summary>Each view of the format file: its name, the type it selects and the properties its columns name.</summary>
    private static IEnumerable<(string View, string Type, IReadOnlyList<string> Properties)> Views() =>
        Format.Descendants("View").Select(v => (
            (string)v.Element("Name")!,
            (string)v.Element("ViewSelectedBy")!.Element("TypeName")!,
            (IReadOnlyList<string>)v.Descendants("PropertyName").Select(p => p.Value).ToList()));

    /// <summary>Every type some cmdlet of the manifest declares as its output.</summary>
    private static IEnumerable<Type> DeclaredOutputTypes()
    {
        var cmdlets = ModuleTests.CmdletTypes();
        return Manifest.CmdletsToExport
            .SelectMany(c => cmdlets[c].GetCustomAttributes<OutputTypeAttribute>())
            .SelectMany(a => a.Type)
            .Select(t => t.Type!)
            .Where(t => t != typeof(void))
            .Distinct();
    }

    public static TheoryData<string> OutputTypes
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var t in DeclaredOutputTypes().OrderBy(t => t.FullName))
                data.Add(t.FullName!);
            return data;
        }
    }

    private static Type TypeNamed(string fullName) => DeclaredOutputTypes().Single(t => t.FullName == fullName);

    [Theory]
    [MemberData(nameof(OutputTypes))]
    public void EveryOutputTypeHasAViewAndJobsKeepPowerShellsJobView(string typeName)
    {
        var views = Views().Where(v => v.Type == typeName).Select(v => v.View).ToList();
        if (typeof(Job).IsAssignableFrom(TypeNamed(typeName)))
        {
            Assert.True(views.Count == 0, $"{typeName} is a job: Get-Job's own view should show it, not '{string.Join(", ", views)}'");
            Assert.NotEmpty(Hosted.Script(module.Shared, "Get-FormatData -TypeName System.Management.Automation.Job"));
        }
        else
        {
            Assert.True(views.Count > 0, $"{typeName} is output by a Glass cmdlet and should have a view in Glass.format.ps1xml");
        }
    }

    [Fact]
    public void EveryViewShowsATypeACmdletOutputsAndOnlyPropertiesItHas()
    {
        var declared = DeclaredOutputTypes().ToDictionary(t => t.FullName!);
        foreach (var (view, type, properties) in Views())
        {
            Assert.True(declared.TryGetValue(type, out var t), $"view {view} selects {type}, which no cmdlet outputs");
            foreach (var p in properties)
                Assert.True(t!.GetProperty(p) is not null, $"view {view} shows {type}.{p}, which does not exist: the column would stay empty");
        }
    }

    [Fact]
    public void TheHostedRunspaceLoadsEveryViewOfTheFormatFile()
    {
        foreach (var (view, type, _) in Views())
        {
            var data = Hosted.Script(module.Shared, "Get-FormatData -TypeName $args[0]", type);
            var loaded = Assert.IsType<ExtendedTypeDefinition>(Assert.Single(data));
            Assert.Contains(loaded.FormatViewDefinition, d => d.Name == view);
        }
    }
}
