using System.Management.Automation;
using Glass.PowerShell.Commands;

namespace Glass.PowerShell.Tests;

/// <summary>
/// What a failure looks like to a user: an ErrorRecord with a stable id, the right category and
/// target, terminating only where nothing can go on, so -ErrorAction decides for the rest.
/// </summary>
[Collection(HostedModuleCollection.Name)]
public sealed class ErrorRecordTests(HostedModule module) : IDisposable
{
    private static readonly string Channel = new('0', 32);

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(HostedModule.ClientRouterVariable, null);
        if (File.Exists(module.ClientConfigPath))
            File.Delete(module.ClientConfigPath);
    }

    private Outcome Run(string name, Dictionary<string, object?> parameters) => Hosted.Command(module.Shared, name, parameters);

    private void WriteClientConfig(string yaml)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(module.ClientConfigPath)!);
        File.WriteAllText(module.ClientConfigPath, yaml);
    }

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(module.NewFolder(), name);
        File.WriteAllText(path, text);
        return path;
    }

    private static string ClosedRouter() => $"127.0.0.1:{Hosted.ClosedPort()}";

    public static TheoryData<string, string[]> ClientCommands() => new()
    {
        { "New-GlassBinding", new[] { "LocalPort=1234" } },
        { "Connect-GlassChannel", new[] { $"Id={Channel}" } },
        { "Connect-GlassChannel", new[] { $"Id={Channel}", "LocalPort=5555" } },
    };

    private static Dictionary<string, object?> Parameters(string[] pairs) =>
        pairs.Select(p => p.Split('=')).ToDictionary(p => p[0], p => (object?)p[1]);

    [Theory]
    [MemberData(nameof(ClientCommands))]
    public void NoRouterAnywhereIsATerminatingRouterMissingNamingTheThreeWaysToGiveOne(string cmdlet, string[] parameters)
    {
        var p = Parameters(parameters);
        p["ErrorAction"] = "SilentlyContinue"; // does not hide it: nothing can go on without a router
        var e = Run(cmdlet, p).Terminating;
        Assert.Equal($"router-missing,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Contains("-Router HOST:PORT", e.Exception.Message);
        Assert.Contains("$env:GLASS_ROUTER", e.Exception.Message);
        Assert.Contains("Set-GlassClientConfig -Router", e.Exception.Message);
        Assert.Contains(module.ClientConfigPath, e.Exception.Message);
    }

    [Theory]
    [MemberData(nameof(ClientCommands))]
    public void AParameterWinsOverTheVariableAndTheVariableOverTheFile(string cmdlet, string[] parameters)
    {
        string fromFile = ClosedRouter(), fromVariable = ClosedRouter(), fromParameter = ClosedRouter();
        WriteClientConfig($"router: {fromFile}\n");
        Assert.Contains(fromFile, Run(cmdlet, Parameters(parameters)).SingleError.Exception.Message);
        Environment.SetEnvironmentVariable(HostedModule.ClientRouterVariable, fromVariable);
        Assert.Contains(fromVariable, Run(cmdlet, Parameters(parameters)).SingleError.Exception.Message);
        var p = Parameters(parameters);
        p["Router"] = fromParameter;
        Assert.Contains(fromParameter, Run(cmdlet, p).SingleError.Exception.Message);
    }

    [Fact]
    public void AClosedRouterPortIsANonTerminatingRouterUnreachableThatErrorActionDecides()
    {
        var router = ClosedRouter();
        var shown = Run("New-GlassBinding", new() { ["LocalPort"] = 1234, ["Router"] = router });
        var e = shown.SingleError;
        Assert.Empty(shown.Output);
        Assert.Equal(Hosted.ErrorId<NewGlassBindingCommand>("router-unreachable"), e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ConnectionError, e.CategoryInfo.Category);
        Assert.Equal(router, e.TargetObject);
        Assert.Contains($"The glass controller at {router} cannot be reached", e.Exception.Message);

        var silent = Run("New-GlassBinding", new() { ["LocalPort"] = 1234, ["Router"] = router, ["ErrorAction"] = "SilentlyContinue", ["ErrorVariable"] = "failed" });
        Assert.Null(silent.Thrown);
        Assert.Empty(silent.Errors);
        Assert.Equal(Hosted.ErrorId<NewGlassBindingCommand>("router-unreachable"),
            Assert.Single(Hosted.Script(module.Shared, "$failed | ForEach-Object FullyQualifiedErrorId")));

        var stopped = Run("New-GlassBinding", new() { ["LocalPort"] = 1234, ["Router"] = router, ["ErrorAction"] = "Stop" });
        Assert.IsType<ActionPreferenceStopException>(stopped.Thrown);
        Assert.Equal(Hosted.ErrorId<NewGlassBindingCommand>("router-unreachable"), stopped.Terminating.FullyQualifiedErrorId);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(5555)]
    public void ConnectGlassChannelSaysRouterUnreachableForItsChannel(int? localPort)
    {
        var router = ClosedRouter();
        var p = new Dictionary<string, object?> { ["Id"] = Channel, ["Router"] = router };
        if (localPort is { } port)
            p["LocalPort"] = port;
        var e = Run("Connect-GlassChannel", p).SingleError;
        Assert.Equal(Hosted.ErrorId<ConnectGlassChannelCommand>("router-unreachable"), e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ConnectionError, e.CategoryInfo.Category);
        Assert.Equal(Channel, e.TargetObject);
    }

    [Theory]
    [InlineData("host:99999")]
    [InlineData(":7000")]
    public void AMalformedRouterIsABadRequestBeforeAnyConnection(string router)
    {
        var e = Run("New-GlassBinding", new() { ["LocalPort"] = 1234, ["Router"] = router }).SingleError;
        Assert.Equal(Hosted.ErrorId<NewGlassBindingCommand>("bad-request"), e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Contains($"'{router}'", e.Exception.Message);
    }

    [Theory]
    [InlineData("Get-GlassSession")]
    [InlineData("Get-GlassTranslatorStatus")]
    public void NoTranslatorIsANonTerminatingTranslatorUnavailableNamingTheSocket(string cmdlet)
    {
        var socket = Path.Combine(module.NewFolder(), "none.sock");
        var outcome = Run(cmdlet, new() { ["ControlSocket"] = socket });
        var e = outcome.SingleError;
        Assert.Empty(outcome.Output);
        Assert.Equal($"translator-unavailable,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceUnavailable, e.CategoryInfo.Category);
        Assert.Equal(socket, e.TargetObject);
        Assert.Contains($"Start-GlassTranslator -ControlSocket {socket}", e.Exception.Message);

        var silent = Run(cmdlet, new() { ["ControlSocket"] = socket, ["ErrorAction"] = "SilentlyContinue" });
        Assert.Null(silent.Thrown);
        Assert.Empty(silent.Errors);
        Assert.StartsWith("translator-unavailable,", Run(cmdlet, new() { ["ControlSocket"] = socket, ["ErrorAction"] = "Stop" }).Terminating.FullyQualifiedErrorId);
    }

    [Theory]
    [InlineData("Start-GlassController")]
    [InlineData("Start-GlassTranslator")]
    [InlineData("Start-GlassRouter")]
    public void ABadRouterConfigIsATerminatingInvalidGlassConfigNamingFileLineAndKey(string cmdlet)
    {
        var bad = WriteFile("router.yaml", "queue: 6\nportRange: 60000-60999\ncontroller:\n  prot: 7000\n");
        // Under -WhatIf too: the file is read before anything would be changed.
        var p = new Dictionary<string, object?> { ["ConfigPath"] = bad, ["ErrorAction"] = "SilentlyContinue" };
        if (cmdlet != "Start-GlassController")
            p["WhatIf"] = true;
        var e = Run(cmdlet, p).Terminating;
        Assert.Equal($"InvalidGlassConfig,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, e.CategoryInfo.Category);
        Assert.Equal(bad, e.TargetObject);
        Assert.StartsWith($"{bad}:4:3: unknown key 'controller.prot'", e.Exception.Message);
    }

    [Fact]
    public void ABadClientConfigStopsTheClientCmdletsNamingFileLineAndKey()
    {
        WriteClientConfig("router: 127.0.0.1:7000\nrouter_port: 7000\n");
        foreach (var (cmdlet, p) in new[]
        {
            ("New-GlassBinding", new Dictionary<string, object?> { ["LocalPort"] = 1234, ["Router"] = ClosedRouter() }),
            ("Connect-GlassChannel", new Dictionary<string, object?> { ["Id"] = Channel, ["Router"] = ClosedRouter() }),
            ("Set-GlassClientConfig", new Dictionary<string, object?> { ["Router"] = ClosedRouter() }),
        })
        {
            var e = Run(cmdlet, p).Terminating;
            Assert.Equal($"InvalidGlassConfig,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidData, e.CategoryInfo.Category);
            Assert.Equal(module.ClientConfigPath, e.TargetObject);
            Assert.StartsWith($"{module.ClientConfigPath}:2:1: unknown key 'router_port'", e.Exception.Message);
        }
        // Get-GlassClientConfig only shows: its failure is non-terminating.
        var shown = Run("Get-GlassClientConfig", new()).SingleError;
        Assert.Equal(Hosted.ErrorId<GetGlassClientConfigCommand>("InvalidGlassConfig"), shown.FullyQualifiedErrorId);
        Assert.Equal(module.ClientConfigPath, shown.TargetObject);
    }

    [Theory]
    [InlineData("Start-GlassTranslator")]
    [InlineData("Start-GlassController")]
    public void AWrongPortRangeIsATerminatingInvalidPortRangeNamingIt(string cmdlet)
    {
        var p = new Dictionary<string, object?> { ["PortRange"] = "70000-1", ["Port"] = 0, ["Address"] = "127.0.0.1" };
        if (cmdlet == "Start-GlassTranslator")
        {
            p.Remove("Port");
            p.Remove("Address");
            p["WhatIf"] = true;
        }
        var e = Run(cmdlet, p).Terminating;
        Assert.Equal($"InvalidPortRange,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal("70000-1", e.TargetObject);
        Assert.Contains("'70000-1'", e.Exception.Message);
    }

    [Theory]
    [InlineData("Router", "host:99999", "InvalidRouter", "host:99999")]
    [InlineData("Token", "has space", "InvalidClientSetting", "token")]
    [InlineData("Secret", "a=b", "InvalidClientSetting", "secret")]
    public void SetGlassClientConfigRefusesAValueTheClientsCouldNotUse(string parameter, string value, string id, string target)
    {
        var e = Run("Set-GlassClientConfig", new() { [parameter] = value }).Terminating;
        Assert.Equal(Hosted.ErrorId<SetGlassClientConfigCommand>(id), e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.Equal(target, e.TargetObject);
        Assert.False(File.Exists(module.ClientConfigPath), "nothing is saved when a value is refused");
    }

    [Theory]
    [InlineData("Get-GlassBinding", "binding", "Get-GlassBinding")]
    [InlineData("Remove-GlassBinding", "binding", "Get-GlassBinding")]
    [InlineData("Get-GlassChannel", "forwarded port", "Get-GlassChannel")]
    [InlineData("Disconnect-GlassChannel", "forwarded port", "Get-GlassChannel")]
    public void AnUnknownChannelIdIsANonTerminatingGlassJobNotFound(string cmdlet, string what, string lister)
    {
        var outcome = Run(cmdlet, new() { ["ChannelId"] = Channel });
        var e = outcome.SingleError;
        Assert.Empty(outcome.Output);
        Assert.Equal($"GlassJobNotFound,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.Equal(Channel, e.TargetObject);
        Assert.Equal($"No {what} in this session has channel id {Channel}; {lister} lists them.", e.Exception.Message);
        Assert.Empty(Run(cmdlet, new() { ["ChannelId"] = Channel, ["ErrorAction"] = "SilentlyContinue" }).Errors);
    }

    [Theory]
    [InlineData("Stop-GlassTranslator", "Queue", 4321, "translator", "Get-Job -Name GlassTranslator*")]
    [InlineData("Stop-GlassController", "Port", 7321, "controller", "Get-Job -Name GlassController*")]
    public void StoppingAServiceThatDoesNotRunIsANonTerminatingGlassJobNotFound(string cmdlet, string key, int value, string what, string lister)
    {
        using var runspace = module.NewRunspace();
        var id = $"GlassJobNotFound,{ModuleTests.CmdletTypes()[cmdlet].FullName}";
        var all = Hosted.Command(runspace, cmdlet).SingleError;
        Assert.Equal(id, all.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, all.CategoryInfo.Category);
        Assert.Equal($"No {what} runs in this session; {lister} lists them.", all.Exception.Message);

        var one = Hosted.Command(runspace, cmdlet, new() { [key] = value }).SingleError;
        Assert.Equal(id, one.FullyQualifiedErrorId);
        Assert.Equal(value.ToString(System.Globalization.CultureInfo.InvariantCulture), one.TargetObject);
        Assert.Empty(Hosted.Command(runspace, cmdlet, new() { [key] = value, ["ErrorAction"] = "SilentlyContinue" }).Errors);
    }

    [Fact]
    public void ARouterThatAnswersNeitherPartIsTwoNonTerminatingErrorsAndNoStatus()
    {
        var socket = Path.Combine(module.NewFolder(), "none.sock");
        var port = Hosted.ClosedPort();
        var outcome = Run("Get-GlassRouterStatus", new() { ["ControlSocket"] = socket, ["Controller"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        Assert.Null(outcome.Thrown);
        Assert.Empty(outcome.Output);
        Assert.Equal(new[] { "translator-unavailable", "router-unreachable" },
            outcome.Errors.Select(e => e.FullyQualifiedErrorId.Split(',')[0]));
        Assert.Equal(socket, outcome.Errors[0].TargetObject);
        Assert.Equal(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port), outcome.Errors[1].TargetObject);
    }

    [Fact]
    public void ListingWithoutAnIdInASessionWithoutJobsIsEmptyAndQuiet()
    {
        using var runspace = module.NewRunspace();
        foreach (var cmdlet in new[] { "Get-GlassBinding", "Get-GlassChannel" })
            Assert.Empty(Hosted.Command(runspace, cmdlet).Succeeded().Output);
    }

    [Fact]
    public void StartGlassTranslatorChangesNothingUnderWhatIf()
    {
        // The real start needs root (NFQUEUE, iptables): -WhatIf must stop before any of it.
        using var runspace = module.NewRunspace();
        var socket = Path.Combine(module.NewFolder(), "whatif.sock");
        var outcome = Hosted.Command(runspace, "Start-GlassTranslator",
            new() { ["Queue"] = 4321, ["ControlSocket"] = socket, ["PortRange"] = "61000-61099", ["WhatIf"] = true }).Succeeded();
        Assert.Empty(outcome.Output);
        Assert.False(File.Exists(socket));
        Assert.Empty(Hosted.Script(runspace, "Get-Job"));
    }

    [Fact]
    public void StartGlassRouterChangesNothingUnderWhatIf()
    {
        using var runspace = module.NewRunspace();
        var dir = module.NewFolder();
        var socket = Path.Combine(dir, "router.sock");
        var config = WriteFile("router.yaml", $"queue: 4322\ncontrolSocket: {socket}\n");
        Assert.Empty(Hosted.Command(runspace, "Start-GlassRouter", new() { ["ConfigPath"] = config, ["WhatIf"] = true }).Succeeded().Output);
        Assert.False(File.Exists(socket));
        Assert.Empty(Hosted.Script(runspace, "Get-Job"));
    }

    [Fact]
    public void SetGlassClientConfigSavesNothingUnderWhatIf()
    {
        Assert.Empty(Run("Set-GlassClientConfig", new() { ["Router"] = "127.0.0.1:7000", ["WhatIf"] = true, ["PassThru"] = true }).Succeeded().Output);
        Assert.False(File.Exists(module.ClientConfigPath));
    }
}
