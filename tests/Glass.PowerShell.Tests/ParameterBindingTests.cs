using System.Management.Automation;
using System.Net;
using System.Reflection;
using Glass.PowerShell.Commands;

namespace Glass.PowerShell.Tests;

/// <summary>
/// How PowerShell binds what a user types: the documented parameter sets and mandatory
/// parameters, aliases, positions, pipeline input by property name, and the validation that
/// refuses a bad value before anything runs.
/// </summary>
[Collection(HostedModuleCollection.Name)]
public sealed class ParameterBindingTests(HostedModule module)
{
    private static readonly string ChannelA = new('a', 32);
    private static readonly string ChannelB = new('B', 32);

    private CmdletInfo Command(string name) => module.Cmdlet(name);

    private Outcome Run(string name, Dictionary<string, object?> parameters, System.Collections.IEnumerable? input = null) =>
        Hosted.Command(module.Shared, name, parameters, input);

    private static string ClosedRouter() => $"127.0.0.1:{Hosted.ClosedPort()}";

    // The sets as the README and the cmdlets' help describe them: set, its mandatory parameters, default or not.
    [Theory]
    [InlineData("Connect-GlassChannel", "Endpoint", "ChannelId", true)]
    [InlineData("Connect-GlassChannel", "Forward", "ChannelId,LocalPort", false)]
    [InlineData("Connect-GlassChannel", "Stdio", "ChannelId,Stdio", false)]
    [InlineData("New-GlassBinding", ParameterAttribute.AllParameterSets, "LocalPort", true)]
    [InlineData("Start-GlassTranslator", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Start-GlassController", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Start-GlassRouter", ParameterAttribute.AllParameterSets, "ConfigPath", true)]
    [InlineData("Get-GlassSession", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Get-GlassTranslatorStatus", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Get-GlassClientConfig", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Set-GlassClientConfig", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Get-GlassBinding", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Remove-GlassBinding", ParameterAttribute.AllParameterSets, "ChannelId", true)]
    [InlineData("Get-GlassChannel", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Disconnect-GlassChannel", ParameterAttribute.AllParameterSets, "ChannelId", true)]
    [InlineData("Stop-GlassTranslator", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Stop-GlassController", ParameterAttribute.AllParameterSets, "", true)]
    [InlineData("Get-GlassRouterStatus", ParameterAttribute.AllParameterSets, "", true)]
    public void ParameterSetsAndTheirMandatoryParametersAreAsDocumented(string cmdlet, string set, string mandatory, bool isDefault)
    {
        var sets = Command(cmdlet).ParameterSets;
        // A cmdlet with a single set shows it as __AllParameterSets, which PowerShell marks default only among several.
        var s = Assert.Single(sets, x => x.Name == set);
        if (sets.Count > 1)
            Assert.Equal(isDefault, s.IsDefault);
        else
            Assert.True(isDefault, $"{cmdlet} has one parameter set only");
        var expected = mandatory.Split(',', StringSplitOptions.RemoveEmptyEntries).Order();
        Assert.Equal(expected, s.Parameters.Where(p => p.IsMandatory).Select(p => p.Name).Order());
    }

    [Theory]
    [InlineData("Connect-GlassChannel", "ChannelId")]
    [InlineData("New-GlassBinding", "LocalPort")]
    [InlineData("Start-GlassTranslator", "Queue")]
    [InlineData("Start-GlassController", "Port")]
    [InlineData("Start-GlassRouter", "ConfigPath")]
    [InlineData("Set-GlassClientConfig", "Router")]
    [InlineData("Get-GlassBinding", "ChannelId")]
    [InlineData("Remove-GlassBinding", "ChannelId")]
    [InlineData("Get-GlassChannel", "ChannelId")]
    [InlineData("Disconnect-GlassChannel", "ChannelId")]
    [InlineData("Stop-GlassTranslator", "Queue")]
    [InlineData("Stop-GlassController", "Port")]
    public void TheFirstPositionalParameterIsAsDocumented(string cmdlet, string parameter)
    {
        foreach (var set in Command(cmdlet).ParameterSets)
            Assert.Equal(parameter, Assert.Single(set.Parameters, p => p.Position == 0).Name);
    }

    [Fact]
    public void ConnectGlassChannelTakesTheDesignsIdAliasAndAPositionalId()
    {
        var router = ClosedRouter();
        // The failure names the channel it was for: which is what -Id and the position bound.
        var byAlias = Run("Connect-GlassChannel", new() { ["Id"] = ChannelA, ["Router"] = router }).SingleError;
        Assert.Equal(Hosted.ErrorId<ConnectGlassChannelCommand>("router-unreachable"), byAlias.FullyQualifiedErrorId);
        Assert.Equal(ChannelA, byAlias.TargetObject);

        var byPosition = Hosted.Invoke(module.Shared, ps => ps.AddCommand("Connect-GlassChannel").AddArgument(ChannelB).AddParameter("Router", router)).SingleError;
        Assert.Equal(ChannelB, byPosition.TargetObject);
    }

    [Fact]
    public void ConnectGlassChannelTakesEachPipedObjectsChannelIdNotItsJobId()
    {
        // New-GlassBinding ... | Connect-GlassChannel: a binding job has both Id (the job's) and ChannelId.
        var piped = new[] { Hosted.Object(("Id", 7), ("ChannelId", ChannelA)), Hosted.Object(("ChannelId", ChannelB)) };
        var outcome = Run("Connect-GlassChannel", new() { ["Router"] = ClosedRouter() }, piped);
        Assert.Null(outcome.Thrown);
        Assert.Equal(new object[] { ChannelA, ChannelB }, outcome.Errors.Select(e => e.TargetObject));
        Assert.All(outcome.Errors, e => Assert.Equal(Hosted.ErrorId<ConnectGlassChannelCommand>("router-unreachable"), e.FullyQualifiedErrorId));
    }

    [Theory]
    [InlineData("LocalPort", 5555, "Stdio")]
    [InlineData("Name", "x", "Stdio")]
    [InlineData("LocalAddress", "127.0.0.1", "Stdio")]
    public void ConnectGlassChannelRefusesParametersOfTwoSetsTogether(string forward, object value, string other)
    {
        var e = Run("Connect-GlassChannel", new() { ["Id"] = ChannelA, [forward] = value, [other] = true, ["Router"] = ClosedRouter() }).Terminating;
        Assert.Equal(Hosted.ErrorId<ConnectGlassChannelCommand>("AmbiguousParameterSet"), e.FullyQualifiedErrorId);
    }

    [Fact]
    public void ConnectGlassChannelWantsLocalPortWhenGivenALocalAddress()
    {
        // -LocalAddress belongs to the forwarding set, whose -LocalPort is mandatory.
        var e = Run("Connect-GlassChannel", new() { ["Id"] = ChannelA, ["LocalAddress"] = "127.0.0.1", ["Router"] = ClosedRouter() }).Terminating;
        Assert.Equal(Hosted.ErrorId<ConnectGlassChannelCommand>("MissingMandatoryParameter"), e.FullyQualifiedErrorId);
        Assert.Contains("LocalPort", e.Exception.Message);
    }

    [Theory]
    [InlineData("Connect-GlassChannel", "LocalPort", 5555, "ChannelId")]
    [InlineData("New-GlassBinding", "Router", "127.0.0.1:1", "LocalPort")]
    [InlineData("Remove-GlassBinding", "Confirm", false, "ChannelId")]
    [InlineData("Disconnect-GlassChannel", "LocalPort", 5555, "ChannelId")]
    [InlineData("Start-GlassRouter", "Wait", true, "ConfigPath")]
    public void AMissingMandatoryParameterIsAParameterErrorThatNamesIt(string cmdlet, string given, object value, string missing)
    {
        // No host can prompt here: PowerShell stops before the cmdlet runs, naming what is missing.
        var e = Run(cmdlet, new() { [given] = value }).Terminating;
        Assert.StartsWith("MissingMandatoryParameter,", e.FullyQualifiedErrorId);
        Assert.Contains(missing, e.Exception.Message);
    }

    /// <summary>(cmdlet, parameter) for every channel id parameter of the manifest's cmdlets.</summary>
    public static TheoryData<string, string> ChannelIdParameters()
    {
        var data = new TheoryData<string, string>();
        foreach (var (cmdlet, p) in ParametersOfManifestCmdlets())
        {
            if (p.Name == "ChannelId")
                data.Add(cmdlet, p.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ChannelIdParameters))]
    public void EveryChannelIdParameterRefusesAMalformedIdSayingWhatAnIdIs(string cmdlet, string parameter)
    {
        var e = Run(cmdlet, new() { [parameter] = "not-a-channel" }).Terminating;
        Assert.Equal($"ParameterArgumentValidationError,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, e.CategoryInfo.Category);
        Assert.Contains("not-a-channel", e.Exception.Message);
        Assert.Contains("32 hex characters", e.Exception.Message);
    }

    /// <summary>(cmdlet, parameter, value) just outside every [ValidateRange] of the manifest's cmdlets.</summary>
    public static TheoryData<string, string, long> OutOfRangeValues()
    {
        var data = new TheoryData<string, string, long>();
        foreach (var (cmdlet, p) in ParametersOfManifestCmdlets())
        {
            // A range by kind (Positive, NonNegative...) has no bounds to step outside of here.
            if (p.GetCustomAttribute<ValidateRangeAttribute>() is not { MinRange: not null, MaxRange: not null } range)
                continue;
            data.Add(cmdlet, p.Name, Convert.ToInt64(range.MinRange) - 1);
            if (Convert.ToInt64(range.MaxRange) < int.MaxValue)
                data.Add(cmdlet, p.Name, Convert.ToInt64(range.MaxRange) + 1);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(OutOfRangeValues))]
    public void EveryRangeIsValidatedBeforeAnythingRuns(string cmdlet, string parameter, long value)
    {
        var e = Run(cmdlet, new() { [parameter] = value }).Terminating;
        Assert.Equal($"ParameterArgumentValidationError,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Contains(parameter, e.Exception.Message);
    }

    /// <summary>(cmdlet, parameter) for every IPAddress parameter of the manifest's cmdlets.</summary>
    public static TheoryData<string, string> AddressParameters()
    {
        var data = new TheoryData<string, string>();
        foreach (var (cmdlet, p) in ParametersOfManifestCmdlets())
        {
            if (p.PropertyType == typeof(IPAddress))
                data.Add(cmdlet, p.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(AddressParameters))]
    public void EveryAddressParameterTakesAHostNameAsItsIPv4Address(string cmdlet, string parameter)
    {
        // What binding -LocalAddress localhost does: the parameter's transformation, run in the runspace.
        var address = Assert.Single(Hosted.Script(module.Shared,
            "$t = (Get-Command $args[0]).Parameters[$args[1]].Attributes | Where-Object { $_ -is [System.Management.Automation.ArgumentTransformationAttribute] }; " +
            "if (-not $t) { throw 'no transformation' }; $t.Transform($ExecutionContext, 'localhost')", cmdlet, parameter));
        Assert.Equal(IPAddress.Loopback, address);

        var e = Run(cmdlet, new() { [parameter] = "no-such-host.invalid" }).Terminating;
        Assert.Equal($"ParameterArgumentTransformationError,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Contains("'no-such-host.invalid' is neither an IP address nor a host name that resolves", e.Exception.Message);
    }

    [Fact]
    public void AnUnknownOffloadModeIsAParameterErrorListingTheModes()
    {
        var e = Run("Start-GlassTranslator", new() { ["Offload"] = "Bogus", ["WhatIf"] = true }).Terminating;
        Assert.Equal(Hosted.ErrorId<StartGlassTranslatorCommand>("CannotConvertArgumentNoMessage"), e.FullyQualifiedErrorId);
        Assert.Contains("None, Kernel", e.Exception.Message);
    }

    /// <summary>(cmdlet, parameter) for every secret parameter (a SecureString or text) of the manifest's cmdlets.</summary>
    public static TheoryData<string, string> SecretParameters()
    {
        var data = new TheoryData<string, string>();
        foreach (var (cmdlet, p) in ParametersOfManifestCmdlets())
        {
            if (p.GetCustomAttribute<SecretTransformationAttribute>() is not null)
                data.Add(cmdlet, p.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(SecretParameters))]
    public void EverySecretLongerThanTheProtocolCarriesIsRefusedWithoutBeingEchoed(string cmdlet, string parameter)
    {
        var secret = "hunter2-" + new string('s', 57);
        var e = Run(cmdlet, new() { [parameter] = secret }).Terminating;
        Assert.Equal($"ParameterArgumentTransformationError,{ModuleTests.CmdletTypes()[cmdlet].FullName}", e.FullyQualifiedErrorId);
        Assert.Contains("A secret is 1 to 64 characters; this one has 65.", e.Exception.Message);
        Assert.DoesNotContain("hunter2", e.Exception.Message);
    }

    [Fact]
    public void GetAndRemoveTakeChannelIdsFromThePipelineAndAnswerForEach()
    {
        var piped = new[] { Hosted.Object(("ChannelId", ChannelA)), Hosted.Object(("ChannelId", ChannelB)) };
        foreach (var cmdlet in new[] { "Get-GlassBinding", "Remove-GlassBinding", "Get-GlassChannel" })
        {
            var outcome = Run(cmdlet, new(), piped);
            Assert.Null(outcome.Thrown);
            Assert.Equal(new object[] { ChannelA, ChannelB }, outcome.Errors.Select(e => e.TargetObject));
            Assert.All(outcome.Errors, e => Assert.StartsWith("GlassJobNotFound,", e.FullyQualifiedErrorId));
        }
    }

    [Fact]
    public void DisconnectGlassChannelTakesChannelIdAndLocalPortFromThePipeline()
    {
        // What Get-GlassChannel | Disconnect-GlassChannel passes along.
        var outcome = Run("Disconnect-GlassChannel", new(), new[] { Hosted.Object(("ChannelId", ChannelA), ("LocalPort", 5555)) });
        var e = outcome.SingleError;
        Assert.Equal($"{ChannelA} on local port 5555", e.TargetObject);
    }

    private static IEnumerable<(string Cmdlet, PropertyInfo Parameter)> ParametersOfManifestCmdlets()
    {
        var types = ModuleTests.CmdletTypes();
        foreach (var cmdlet in Manifest.CmdletsToExport)
        {
            foreach (var p in types[cmdlet].GetProperties().Where(p => p.GetCustomAttributes<ParameterAttribute>().Any()))
                yield return (cmdlet, p);
        }
    }
}
