using System.Collections;
using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;

namespace Glass.PowerShell.Tests;

/// <summary>
/// The Glass module imported into in-process runspaces (Microsoft.PowerShell.SDK), from its
/// manifest beside Glass.PowerShell.dll in the test output, as out/Glass lays it out.
/// Environment variables are process-wide, so the whole assembly is one collection: every test
/// sees the same isolated user (XDG_CONFIG_HOME and XDG_DATA_HOME in a temp folder, no
/// GLASS_ROUTER), and the old values come back when the run ends.
/// </summary>
public sealed class HostedModule : IDisposable
{
    private static readonly string[] IsolatedVariables = { "XDG_CONFIG_HOME", "XDG_DATA_HOME", ClientRouterVariable };
    public const string ClientRouterVariable = "GLASS_ROUTER";

    private readonly Dictionary<string, string?> _saved = new();
    private readonly InitialSessionState _state;
    private readonly Lazy<LoopbackRouter> _router;
    private readonly Dictionary<string, CmdletInfo> _cmdlets = new(StringComparer.OrdinalIgnoreCase);

    public HostedModule()
    {
        Root = Directory.CreateTempSubdirectory("glass-pstests-").FullName;
        foreach (var name in IsolatedVariables)
            _saved[name] = Environment.GetEnvironmentVariable(name);
        ConfigHome = Path.Combine(Root, "config");
        DataHome = Path.Combine(Root, "data");
        Environment.SetEnvironmentVariable("XDG_CONFIG_HOME", ConfigHome);
        Environment.SetEnvironmentVariable("XDG_DATA_HOME", DataHome);
        Environment.SetEnvironmentVariable(ClientRouterVariable, null);

        _state = InitialSessionState.CreateDefault2();
        _state.ImportPSModule(Manifest.Path);
        Shared = NewRunspace();
        _router = new Lazy<LoopbackRouter>(() => new LoopbackRouter(this));
    }

    /// <summary>A temp folder of this run, removed at its end.</summary>
    public string Root { get; }

    public string ConfigHome { get; }

    public string DataHome { get; }

    /// <summary>Where Get-/Set-GlassClientConfig keep this (isolated) user's settings.</summary>
    public string ClientConfigPath => Path.Combine(ConfigHome, "glass", "client.yaml");

    /// <summary>A runspace for tests that leave no jobs behind.</summary>
    public Runspace Shared { get; }

    /// <summary>A controller on loopback over an in-process translator, in its own runspace; started on first use.</summary>
    public LoopbackRouter Router => _router.Value;

    /// <summary>What Get-Command says of one of the module's cmdlets (asked once per run).</summary>
    public CmdletInfo Cmdlet(string name)
    {
        lock (_cmdlets)
        {
            if (!_cmdlets.TryGetValue(name, out var info))
            {
                info = Assert.IsType<CmdletInfo>(Assert.Single(Hosted.Script(Shared, "Get-Command -Module Glass -Name $args[0]", name)));
                _cmdlets[name] = info;
            }
            return info;
        }
    }

    /// <summary>A fresh runspace with the module imported; the caller disposes it.</summary>
    public Runspace NewRunspace()
    {
        var rs = RunspaceFactory.CreateRunspace(_state);
        rs.Open();
        return rs;
    }

    /// <summary>A new temp folder under <see cref="Root"/>.</summary>
    public string NewFolder() => Directory.CreateDirectory(Path.Combine(Root, Guid.NewGuid().ToString("n")[..8])).FullName;

    public void Dispose()
    {
        if (_router.IsValueCreated)
            _router.Value.Dispose();
        Shared.Dispose();
        foreach (var (name, value) in _saved)
            Environment.SetEnvironmentVariable(name, value);
        Directory.Delete(Root, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class HostedModuleCollection : ICollectionFixture<HostedModule>
{
    public const string Name = "Hosted Glass module";
}

/// <summary>What one command or pipeline did: its output, the errors and warnings it wrote, and the terminating error it threw.</summary>
public sealed record Outcome(Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors, IReadOnlyList<WarningRecord> Warnings, RuntimeException? Thrown)
{
    public IReadOnlyList<object> Objects => Output.Select(o => o.BaseObject).ToList();

    /// <summary>The error a terminating failure carried (a parameter error, ThrowTerminatingError, -ErrorAction Stop).</summary>
    public ErrorRecord Terminating => Thrown?.ErrorRecord ?? throw new Xunit.Sdk.XunitException(
        $"expected a terminating error; got {Output.Count} objects and {Errors.Count} non-terminating errors: {string.Join("; ", Errors.Select(e => e.FullyQualifiedErrorId))}");

    /// <summary>The one non-terminating error, after checking that nothing terminated.</summary>
    public ErrorRecord SingleError
    {
        get
        {
            Assert.True(Thrown is null, $"expected a non-terminating error, but the command threw {Thrown?.ErrorRecord.FullyQualifiedErrorId}: {Thrown?.Message}");
            return Assert.Single(Errors);
        }
    }

    /// <summary>Nothing failed, terminating or not.</summary>
    public Outcome Succeeded()
    {
        Assert.True(Thrown is null, $"the command threw {Thrown?.ErrorRecord.FullyQualifiedErrorId}: {Thrown?.Message}");
        Assert.True(Errors.Count == 0, $"the command wrote errors: {string.Join("; ", Errors.Select(e => $"{e.FullyQualifiedErrorId}: {e.Exception.Message}"))}");
        return this;
    }
}

public static class Hosted
{
    /// <summary>Runs what <paramref name="build"/> adds, in <paramref name="runspace"/>, with <paramref name="input"/> piped into it.</summary>
    public static Outcome Invoke(Runspace runspace, Action<System.Management.Automation.PowerShell> build, IEnumerable? input = null)
    {
        using var ps = System.Management.Automation.PowerShell.Create(runspace);
        build(ps);
        Collection<PSObject> output = new();
        RuntimeException? thrown = null;
        try
        {
            output = input is null ? ps.Invoke() : ps.Invoke(input);
        }
        catch (RuntimeException e)
        {
            thrown = e;
        }
        return new Outcome(output, ps.Streams.Error.ToList(), ps.Streams.Warning.ToList(), thrown);
    }

    /// <summary>Runs one command with named parameters (a switch is given as true).</summary>
    public static Outcome Command(Runspace runspace, string name, Dictionary<string, object?>? parameters = null, IEnumerable? input = null) =>
        Invoke(runspace, ps =>
        {
            ps.AddCommand(name);
            foreach (var (key, value) in parameters ?? new Dictionary<string, object?>())
            {
                if (value is true)
                    ps.AddParameter(key);
                else
                    ps.AddParameter(key, value);
            }
        }, input);

    /// <summary>A script's output (errors fail the test).</summary>
    public static IReadOnlyList<object> Script(Runspace runspace, string script, params object[] args) =>
        Invoke(runspace, ps =>
        {
            ps.AddScript(script);
            foreach (var a in args)
                ps.AddArgument(a);
        }).Succeeded().Objects;

    /// <summary>The FullyQualifiedErrorId PowerShell gives error <paramref name="id"/> of the cmdlet <paramref name="cmdlet"/>.</summary>
    public static string ErrorId<TCmdlet>(string id) where TCmdlet : Cmdlet => $"{id},{typeof(TCmdlet).FullName}";

    /// <summary>A pipeline object with these note properties, as [pscustomobject]@{...} makes it.</summary>
    public static PSObject Object(params (string Name, object? Value)[] properties)
    {
        var o = new PSObject();
        foreach (var (name, value) in properties)
            o.Properties.Add(new PSNoteProperty(name, value));
        return o;
    }

    /// <summary>A loopback port that nothing listens on (it was free a moment ago).</summary>
    public static int ClosedPort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}

/// <summary>The module manifest as shipped (module/Glass.psd1), read without a runspace.</summary>
public static class Manifest
{
    public static string Path => System.IO.Path.Combine(AppContext.BaseDirectory, "Glass.psd1");

    public static string FormatPath => System.IO.Path.Combine(AppContext.BaseDirectory, "Glass.format.ps1xml");

    private static readonly Lazy<Hashtable> Data = new(() =>
    {
        var ast = Parser.ParseFile(Path, out _, out var errors);
        Assert.Empty(errors);
        var table = (HashtableAst)ast.Find(a => a is HashtableAst, searchNestedScriptBlocks: false)!;
        return (Hashtable)table.SafeGetValue();
    });

    public static IReadOnlyList<string> CmdletsToExport =>
        ((object[])Data.Value["CmdletsToExport"]!).Cast<string>().ToList();

    public static string ModuleVersion => (string)Data.Value["ModuleVersion"]!;

    public static IReadOnlyList<string> FormatsToProcess =>
        ((object[])Data.Value["FormatsToProcess"]!).Cast<string>().ToList();

    /// <summary>The cmdlets of the manifest, for [MemberData].</summary>
    public static TheoryData<string> Cmdlets
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var c in CmdletsToExport)
                data.Add(c);
            return data;
        }
    }
}
