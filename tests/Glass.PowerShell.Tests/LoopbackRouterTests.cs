using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Net;
using Glass.PowerShell.Commands;
using Glass.PowerShell.Jobs;
using Glass.Translator;

namespace Glass.PowerShell.Tests;

/// <summary>
/// The client and query cmdlets against a controller on loopback (over an in-process translator
/// that relays nothing): what each outputs, and that the jobs they make are listed and removed.
/// </summary>
[Collection(HostedModuleCollection.Name)]
public sealed class LoopbackRouterTests(HostedModule module)
{
    private LoopbackRouter Router => module.Router;

    private Runspace Session => Router.Runspace;

    private Outcome Run(string name, Dictionary<string, object?> parameters, System.Collections.IEnumerable? input = null) =>
        Hosted.Command(Session, name, parameters, input);

    private GlassBindingJob Bind(Dictionary<string, object?>? extra = null)
    {
        var p = new Dictionary<string, object?> { ["LocalPort"] = 9, ["Router"] = Router.Address };
        foreach (var (k, v) in extra ?? new())
            p[k] = v;
        return Assert.IsType<GlassBindingJob>(Assert.Single(Run("New-GlassBinding", p).Succeeded().Objects));
    }

    private void Remove(Job job) => Hosted.Invoke(Session, ps => ps.AddCommand("Remove-Job").AddParameter("Force"), new[] { job }).Succeeded();

    private IReadOnlyList<Job> Jobs() => Hosted.Script(Session, "Get-Job").Cast<Job>().ToList();

    [Fact]
    public void StartGlassControllerOutputsARunningControllerJobThatGetJobLists()
    {
        var c = Router.Controller;
        Assert.Equal("GlassController", c.PSJobTypeName);
        Assert.Equal(JobState.Running, c.JobStateInfo.State);
        Assert.Equal($"GlassController-{c.EndPoint!.Port}", c.Name);
        Assert.Equal(IPAddress.Loopback, c.EndPoint.Address);
        Assert.Equal(LoopbackRouter.PortRange, c.PortRange);
        Assert.Contains(Jobs(), j => j.Id == c.Id);
    }

    [Fact]
    public void NewGlassBindingOutputsABindingJobThatGetGlassBindingListsAndRemoveGlassBindingRemoves()
    {
        var b = Bind();
        Assert.Matches("^[0-9a-f]{32}$", b.ChannelId);
        Assert.Equal(JobState.Running, b.JobStateInfo.State);
        Assert.Equal("GlassBinding", b.PSJobTypeName);
        Assert.Contains(Jobs(), j => j.Id == b.Id);

        var info = Assert.IsType<GlassBindingInfo>(Assert.Single(Run("Get-GlassBinding", new() { ["ChannelId"] = b.ChannelId }).Succeeded().Objects));
        Assert.Equal(b.Id, info.JobId);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9), info.LocalTarget);
        Assert.Contains(Run("Get-GlassBinding", new()).Succeeded().Objects.Cast<GlassBindingInfo>(), i => i.ChannelId == b.ChannelId);

        // -WhatIf leaves it running; the real thing stops it and takes its job away.
        Assert.Empty(Run("Remove-GlassBinding", new() { ["ChannelId"] = b.ChannelId, ["WhatIf"] = true }).Succeeded().Output);
        Assert.Equal(JobState.Running, b.JobStateInfo.State);
        Assert.Empty(Run("Remove-GlassBinding", new() { ["ChannelId"] = b.ChannelId }).Succeeded().Output);
        Assert.Equal(JobState.Stopped, b.JobStateInfo.State);
        Assert.DoesNotContain(Jobs(), j => j.Id == b.Id);
        Assert.StartsWith("GlassJobNotFound,", Run("Get-GlassBinding", new() { ["ChannelId"] = b.ChannelId }).SingleError.FullyQualifiedErrorId);
    }

    [Fact]
    public void NewGlassBindingTakesLocalhostForItsLocalAddress()
    {
        var b = Bind(new() { ["LocalAddress"] = "localhost" });
        try
        {
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9), b.LocalTarget);
        }
        finally
        {
            Remove(b);
        }
    }

    [Fact]
    public void APipedBindingJobConnectsAForwardedPortThatGetGlassChannelListsAndDisconnectRemoves()
    {
        var b = Bind();
        try
        {
            // New-GlassBinding ... | Connect-GlassChannel -LocalPort 0 -LocalAddress localhost
            var f = Assert.IsType<GlassChannelJob>(Assert.Single(
                Run("Connect-GlassChannel", new() { ["LocalPort"] = 0, ["LocalAddress"] = "localhost", ["Router"] = Router.Address }, new[] { b }).Succeeded().Objects));
            Assert.Equal(b.ChannelId, f.ChannelId);
            Assert.Equal(IPAddress.Loopback, f.LocalEndPoint.Address);
            Assert.NotEqual(0, f.LocalPort);
            Assert.Equal("GlassChannel", f.PSJobTypeName);

            var info = Assert.IsType<GlassChannelInfo>(Assert.Single(Run("Get-GlassChannel", new() { ["ChannelId"] = b.ChannelId }).Succeeded().Objects));
            Assert.Equal(f.Id, info.JobId);
            Assert.Equal(f.LocalPort, info.LocalPort);

            // Get-GlassChannel | Disconnect-GlassChannel
            Assert.Empty(Run("Disconnect-GlassChannel", new(), new[] { info }).Succeeded().Output);
            Assert.Equal(JobState.Stopped, f.JobStateInfo.State);
            Assert.DoesNotContain(Jobs(), j => j.Id == f.Id);
        }
        finally
        {
            Remove(b);
        }
    }

    [Fact]
    public void AForwarderKeepsOneEndpointReadyForItsNextConnectionAndGivesItBackUnused()
    {
        var b = Bind();
        try
        {
            var f = Assert.IsType<GlassChannelJob>(Assert.Single(
                Run("Connect-GlassChannel", new() { ["LocalPort"] = 0, ["Router"] = Router.Address }, new[] { b }).Succeeded().Objects));
            int Pending() => Router.Engine.GetSessions().Count(s => s.State == Glass.Translator.SessionState.Pending);
            var before = Pending();

            using var app = new System.Net.Sockets.TcpClient();
            app.Connect(f.LocalEndPoint);
            // The connection's own link, and one asked for ahead of the next connection.
            WaitUntil(() => Pending() == before + 2, "the connection's link and a spare one");
            // Unused for its lifetime, the spare's link is given back; the connection's stays.
            WaitUntil(() => Pending() == before + 1, "the spare link to be cancelled", seconds: 20);
            Remove(f);
        }
        finally
        {
            Remove(b);
        }
    }

    private static void WaitUntil(Func<bool> condition, string what, int seconds = 10)
    {
        var deadline = Environment.TickCount64 + seconds * 1000L;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
                Assert.Fail($"Timed out after {seconds} s waiting for {what}.");
            Thread.Sleep(20);
        }
    }

    [Fact]
    public void ConnectGlassChannelWithoutALocalPortOutputsARouterEndpointAndTheTranslatorListsItsSession()
    {
        var b = Bind();
        try
        {
            var ep = Assert.IsType<GlassEndpoint>(Assert.Single(Run("Connect-GlassChannel", new() { ["Id"] = b.ChannelId.ToUpperInvariant(), ["Router"] = Router.Address }).Succeeded().Objects));
            Assert.Equal(b.ChannelId, ep.ChannelId);
            Assert.Equal(IPAddress.Loopback, ep.Address);
            Assert.InRange(ep.Port, 61500, 61599);
            Assert.Equal($"127.0.0.1:{ep.Port}", ep.ToString());

            var sessions = Run("Get-GlassSession", new() { ["ControlSocket"] = Router.ControlSocket }).Succeeded().Objects;
            var session = Assert.Single(sessions.Cast<SessionInfo>(), s => s.RouterPortA == ep.Port || s.RouterPortB == ep.Port);
            Assert.IsType<SessionInfo>(session);
            Assert.Equal(Glass.Translator.SessionState.Pending, session.State);

            var counters = Assert.IsType<SpliceCounters>(Assert.Single(Run("Get-GlassTranslatorStatus", new() { ["ControlSocket"] = Router.ControlSocket }).Succeeded().Objects));
            Assert.True(counters.SessionsPending >= 1);
            Assert.Contains("NotLinked", counters.Drops.Keys);

            Router.Engine.Unlink(Glass.Packets.Ipv4.Parse(session.PeerA), session.RouterPortA);
        }
        finally
        {
            Remove(b);
        }
    }

    [Fact]
    public void ABindingWhoseSecretCannotBeSavedFailsAndLeavesNothingBoundAtTheRouter()
    {
        var before = Router.Controller.Bindings;
        var jobs = Jobs().Count;
        // XDG_DATA_HOME names a file: the channels folder under it cannot be made.
        var blocked = Path.Combine(module.NewFolder(), "not-a-folder");
        File.WriteAllText(blocked, "");
        Environment.SetEnvironmentVariable("XDG_DATA_HOME", blocked);
        Outcome outcome;
        try
        {
            outcome = Run("New-GlassBinding", new() { ["LocalPort"] = 9, ["Router"] = Router.Address });
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_DATA_HOME", module.DataHome);
        }
        var e = outcome.Terminating;
        Assert.Equal(Hosted.ErrorId<NewGlassBindingCommand>("ChannelSecretNotSaved"), e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.WriteError, e.CategoryInfo.Category);
        Assert.Contains(Path.Combine(blocked, "glass", "channels"), e.Exception.Message);
        Assert.Empty(outcome.Output);
        Assert.Equal(jobs, Jobs().Count);
        // The binding it had made is gone from the router too, not left serving outside any job.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Router.Controller.Bindings != before && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        Assert.Equal(before, Router.Controller.Bindings);
    }

    [Fact]
    public void TheTranslatorsCountersShowEveryDropReasonThatCounted()
    {
        Router.Engine.Process(new byte[3]); // too short for IPv4: a Malformed drop
        var malformed = Router.Engine.GetCounters().Drops["Malformed"];
        var text = (string)Assert.Single(Hosted.Script(Session, "Get-GlassTranslatorStatus -ControlSocket $args[0] | Out-String -Width 120", Router.ControlSocket));
        Assert.Matches(@"(?m)^PacketsRelayed\s+: 0\s*$", text);
        // Each reason that counted, by name; none of the many that did not, and nothing cut off.
        Assert.Matches($@"(?m)^Drops\s+: Malformed={malformed}\s*$", text);
        Assert.DoesNotContain("BadChecksum", text);
        Assert.DoesNotContain("…", text);
    }

    [Fact]
    public void GetGlassRouterStatusOutputsBothPartsOfTheRouterInOneObject()
    {
        var b = Bind();
        try
        {
            var status = Assert.IsType<GlassRouterStatus>(Assert.Single(Run("Get-GlassRouterStatus", new() { ["ControlSocket"] = Router.ControlSocket }).Succeeded().Objects));
            Assert.Equal("Running", status.TranslatorState);
            Assert.Equal("Running", status.ControllerState);
            // This session's controller, found without -Controller.
            Assert.Equal(Router.Controller.EndPoint, status.Controller);
            Assert.True(status.Bindings >= 1);
            Assert.NotNull(status.Translator);

            // A part that does not answer is an error beside the other part's figures.
            var half = Run("Get-GlassRouterStatus", new() { ["ControlSocket"] = Path.Combine(module.NewFolder(), "none.sock") });
            Assert.StartsWith("translator-unavailable,", half.SingleError.FullyQualifiedErrorId);
            var shown = Assert.IsType<GlassRouterStatus>(Assert.Single(half.Objects));
            Assert.Equal("Unavailable", shown.TranslatorState);
            Assert.Equal("Running", shown.ControllerState);
        }
        finally
        {
            Remove(b);
        }
    }

    [Fact]
    public void StopGlassControllerStopsOnlyUnderItsOwnNameAndPassesTheStoppedJobOn()
    {
        using var runspace = module.NewRunspace();
        var c = Assert.IsType<GlassControllerJob>(Assert.Single(Hosted.Command(runspace, "Start-GlassController",
            new() { ["Port"] = 0, ["Address"] = "localhost", ["ControlSocket"] = Router.ControlSocket }).Succeeded().Objects));
        try
        {
            Assert.Equal(IPAddress.Loopback, c.EndPoint!.Address);
            Assert.Empty(Hosted.Command(runspace, "Stop-GlassController", new() { ["Port"] = c.EndPoint.Port, ["WhatIf"] = true }).Succeeded().Output);
            Assert.Equal(JobState.Running, c.JobStateInfo.State);
            var stopped = Assert.Single(Hosted.Command(runspace, "Stop-GlassController", new() { ["Port"] = c.EndPoint.Port, ["PassThru"] = true }).Succeeded().Objects);
            Assert.Same(c, stopped);
            Assert.Equal(JobState.Stopped, c.JobStateInfo.State);
            // Kept in the session, so Receive-Job still has its log.
            Assert.Contains(Hosted.Script(runspace, "Get-Job").Cast<Job>(), j => j.Id == c.Id);
        }
        finally
        {
            Hosted.Invoke(runspace, ps => ps.AddScript("Get-Job | Remove-Job -Force"));
        }
        Assert.Equal(JobState.Running, Router.Controller.JobStateInfo.State);
    }

    [Fact]
    public void AnUnboundChannelIsANonTerminatingUnknownChannelForThatChannel()
    {
        var unbound = new string('0', 32);
        foreach (var p in new[] { new Dictionary<string, object?>(), new() { ["LocalPort"] = 0 } })
        {
            p["Id"] = unbound;
            p["Router"] = Router.Address;
            var outcome = Run("Connect-GlassChannel", p);
            var e = outcome.SingleError;
            Assert.Empty(outcome.Output);
            Assert.Equal(Hosted.ErrorId<ConnectGlassChannelCommand>("unknown-channel"), e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
            Assert.Equal(unbound, e.TargetObject);
        }
        Assert.DoesNotContain(Jobs(), j => j is GlassChannelJob c && c.ChannelId == unbound);
    }
}
