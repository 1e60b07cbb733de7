using System.Net;
using Glass.Client;
using Glass.Controller;
using Glass.Translator;
using Glass.Tests.Translator;

namespace Glass.Tests.Controller;

/// <summary>
/// The controller on loopback against a real translator control socket whose engine sends into
/// a fake kernel: the whole rendezvous except the packets.
/// </summary>
public sealed class ControllerHostTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("glass-controller-").FullName;
    private readonly FakeKernel _kernel = new();
    private readonly SpliceEngine _engine;
    private readonly ControlServer _translator;
    private readonly List<IDisposable> _owned = new();

    public ControllerHostTests()
    {
        _engine = new SpliceEngine(_kernel, new FakeClock());
        _translator = new ControlServer(_engine, Path.Combine(_dir, "t.sock"));
        _translator.Start();
    }

    public void Dispose()
    {
        foreach (var d in _owned)
            d.Dispose();
        _translator.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private ControllerHost? _host;

    private IPEndPoint StartController(Func<ControllerOptions, ControllerOptions>? configure = null)
    {
        var options = new ControllerOptions
        {
            Address = IPAddress.Loopback,
            Port = 0,
            ControlSocket = _translator.Path,
            PortRange = new PortRange(62000, 62099),
            // These tests speak raw GLASS/1 lines as well as through the (TLS) client.
            AllowPlaintext = true,
        };
        var host = new ControllerHost(configure?.Invoke(options) ?? options);
        host.Start();
        _owned.Add(host);
        _host = host;
        WaitUntil(() => host.Watching, "the controller to watch the translator");
        return host.LocalEndPoint!;
    }

    private static void WaitUntil(Func<bool> condition, string what, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited {seconds} s for {what}.");
            Thread.Sleep(10);
        }
    }

    /// <summary>The connector's SYN reaches the router port it was given (from 127.0.0.1, as its requests came).</summary>
    private void ConnectorDials(ushort routerPort, ushort sourcePort = 40000) =>
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(TestPackets.Tcp(Glass.Packets.Ipv4.Parse("127.0.0.1"), sourcePort,
            Glass.Packets.Ipv4.Parse("127.0.0.1"), routerPort, 1000, 0, Glass.Packets.TcpFlags.Syn)));

    private async Task<GlassBinding> Bind(IPEndPoint router, BindingOptions? options = null)
    {
        var b = await GlassBinding.StartAsync(router, new IPEndPoint(IPAddress.Loopback, 9), options);
        _owned.Add(b);
        return b;
    }

    /// <summary>
    /// A binder that holds its channel but never dials what it is told (as one far away or slow
    /// would be): its links stay pending. A <see cref="GlassBinding"/> here would dial loopback
    /// ports nobody listens on, be refused and cancel the link at once.
    /// </summary>
    private async Task<(string ChannelId, Glass.Protocol.LineConnection Control)> BindSilent(IPEndPoint router)
    {
        var c = await Open(router);
        _owned.Add(c);
        await c.WriteLineAsync("GLASS/1 BIND", default);
        var answer = (await c.ReadLineAsync(TimeSpan.FromSeconds(10), default))!.Split(' ');
        Assert.Equal("OK", answer[0]);
        return (answer[1], c);
    }

    [Fact]
    public async Task HalfSentRequestsFromOneAddressAreCappedAndTheCapIsGivenBackWhenTheyClose()
    {
        var router = StartController(o => o with { MaxConnectionsPerAddress = 8, RequestTimeout = TimeSpan.FromSeconds(30) });
        var idle = new List<System.Net.Sockets.TcpClient>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var c = new System.Net.Sockets.TcpClient();
                await c.ConnectAsync(router);
                await c.GetStream().WriteAsync("GLASS/1 CONN"u8.ToArray()); // half a request, never finished
                idle.Add(c);
            }
            // The ninth is told at once, without sending anything.
            using (var ninth = new System.Net.Sockets.TcpClient())
            {
                await ninth.ConnectAsync(router);
                var line = await new StreamReader(ninth.GetStream()).ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
                Assert.StartsWith("ERR limit-exceeded", line);
                Assert.Contains("8 open connections", line);
            }
            // Once one closes, a real request is served again.
            idle[0].Dispose();
            idle.RemoveAt(0);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                try
                {
                    await Bind(router);
                    break;
                }
                catch (GlassException e) when (e.ErrorId == GlassErrors.LimitExceeded && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(20); // the closed one is counted out when the controller notices
                }
            }
        }
        finally
        {
            foreach (var c in idle)
                c.Dispose();
        }
    }

    [Fact]
    public async Task ConnectorsFromManyAddressesCannotPinMoreThanTheLimitOfTheBindersPorts()
    {
        var router = StartController(o => o with { MaxLinksPerAddress = 4 });
        var binding = await BindSilent(router); // from 127.0.0.1
        // Each connector from its own loopback address holds one port; the binder one per link.
        for (var i = 0; i < 4; i++)
            Assert.StartsWith("OK ", await ConnectFrom(IPAddress.Parse($"127.0.0.{10 + i}"), router, binding.ChannelId));
        var refused = await ConnectFrom(IPAddress.Parse("127.0.0.20"), router, binding.ChannelId);
        Assert.StartsWith("ERR limit-exceeded", refused);
        Assert.Contains("binder", refused);
    }

    /// <summary>One CONNECT request from <paramref name="from"/>; returns the answer line.</summary>
    private static async Task<string?> ConnectFrom(IPAddress from, IPEndPoint router, string channelId)
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        s.Bind(new IPEndPoint(from, 0));
        await s.ConnectAsync(router);
        using var stream = new System.Net.Sockets.NetworkStream(s);
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"GLASS/1 CONNECT {channelId}\n"));
        return await new StreamReader(stream).ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>A translator of the test's own (which it may stop and start again) and a controller on it.</summary>
    private (SpliceEngine Engine, string Path, ControlServer Translator, ControllerHost Host) StartWithOwnTranslator(
        string socketName, PortRange range, Action<ControllerHost>? beforeStart = null)
    {
        var engine = new SpliceEngine(new FakeKernel(), new FakeClock());
        var path = Path.Combine(_dir, socketName);
        var translator = new ControlServer(engine, path);
        translator.Start();
        var host = new ControllerHost(new ControllerOptions { Address = IPAddress.Loopback, Port = 0, ControlSocket = path, PortRange = range, AllowPlaintext = true });
        beforeStart?.Invoke(host);
        host.Start();
        _owned.Add(host);
        return (engine, path, translator, host);
    }

    [Fact]
    public async Task PortsOfLinksThatEndedWhileTheWatchWasDownAreFreedWhenItIsBack()
    {
        var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var (engine, path, translator, host) = StartWithOwnTranslator("restarting.sock", new PortRange(62000, 62099), h => h.Problem += problems.Enqueue);
        var binding = await BindSilent(host.LocalEndPoint!);
        var answer = await ConnectFrom(IPAddress.Loopback, host.LocalEndPoint!, binding.ChannelId);
        Assert.StartsWith("OK ", answer);
        var connectorPort = ushort.Parse(answer!.Split(' ')[2]);
        Assert.Equal(2, host.GetStatus().PortsInUse);

        // The control socket goes away; meanwhile the link ends, and nobody hears its RELEASED.
        translator.Dispose();
        Assert.True(engine.Unlink(Glass.Packets.Ipv4.Parse("127.0.0.1"), connectorPort));
        Assert.Equal(2, host.GetStatus().PortsInUse);
        using var back = new ControlServer(engine, path);
        back.Start();

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (host.GetStatus().PortsInUse != 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.Equal(0, host.GetStatus().PortsInUse);
        Assert.Contains(problems, p => p.Contains("1 link(s) were paired or ended while this controller was not watching"));
        // And the ports serve the next link.
        Assert.StartsWith("OK ", await ConnectFrom(IPAddress.Loopback, host.LocalEndPoint!, binding.ChannelId));
    }

    [Fact]
    public async Task AnEventThatComesAfterItsLinkWasSettledDoesNotFreeTheNextLinksPorts()
    {
        // Two ports, and binder and connector share 127.0.0.1: one link takes both, so the next
        // link gets the very ports the first one had.
        var (engine, path, translator, host) = StartWithOwnTranslator("late.sock", new PortRange(62000, 62001));
        WaitUntil(() => host.Watching, "the controller to watch the translator");
        var binding = await BindSilent(host.LocalEndPoint!);
        Assert.StartsWith("OK ", await ConnectFrom(IPAddress.Loopback, host.LocalEndPoint!, binding.ChannelId));
        var first = engine.GetSessions().Single();

        // The link ends while the watch is down; Reconcile frees its ports when it is back.
        translator.Dispose();
        Assert.True(engine.Unlink(Glass.Packets.Ipv4.Parse(first.PeerA), first.RouterPortA));
        using var back = new ControlServer(engine, path);
        back.Start();
        WaitUntil(() => host.GetStatus().PortsInUse == 0, "Reconcile to free the ended link's ports", 20);
        Assert.StartsWith("OK ", await ConnectFrom(IPAddress.Loopback, host.LocalEndPoint!, binding.ChannelId));
        var second = engine.GetSessions().Single();
        Assert.Equal(new[] { first.RouterPortA, first.RouterPortB }.Order(), new[] { second.RouterPortA, second.RouterPortB }.Order());

        // The first link's events, late (or twice): the second link keeps its ports.
        foreach (var reason in new[] { LinkRelease.PairedReason, "timeout" })
            host.OnReleased(new LinkRelease(Glass.Packets.Ipv4.Parse(first.PeerA), first.RouterPortA, Glass.Packets.Ipv4.Parse(first.PeerB), first.RouterPortB, reason, first.Id));
        Assert.Equal(2, host.GetStatus().PortsInUse);
        Assert.StartsWith("ERR router-full", await ConnectFrom(IPAddress.Loopback, host.LocalEndPoint!, binding.ChannelId));

        // Its own end frees them.
        Assert.True(engine.Unlink(Glass.Packets.Ipv4.Parse(second.PeerA), second.RouterPortA));
        WaitUntil(() => host.GetStatus().PortsInUse == 0, "the second link's RELEASED to free its ports");
    }

    [Fact]
    public async Task ALinkWhoseBinderCouldNotDialIsCancelledAtOnceAndOnlyByItsBinder()
    {
        var router = StartController();
        // A binder that dials: nothing listens on the loopback router ports (the kernel here is
        // fake), so its dial is refused and it cancels the link instead of leaving it pending.
        var dialer = await Bind(router);
        var answer = await ConnectFrom(IPAddress.Loopback, router, dialer.ChannelId);
        Assert.StartsWith("OK ", answer);
        ConnectorDials(ushort.Parse(answer!.Split(' ')[2]));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (_engine.GetSessions().Count != 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Empty(_engine.GetSessions());
        Assert.Equal(1, dialer.Failures);

        // Another binder (same address, even) cannot cancel a link that is not its own.
        var (silentId, silent) = await BindSilent(router);
        var (_, other) = await BindSilent(router);
        var second = await ConnectFrom(IPAddress.Loopback, router, silentId);
        Assert.StartsWith("OK ", second);
        ConnectorDials(ushort.Parse(second!.Split(' ')[2]));
        var push = (await Read(silent))!.Split(' ');
        Assert.Equal("CONNECT", push[0]);
        await other.WriteLineAsync($"CANCEL {push[2]}", default);
        await other.WriteLineAsync("PING", default);
        Assert.Equal("PONG", await Read(other)); // the CANCEL before it was handled
        Assert.Single(_engine.GetSessions());
        await silent.WriteLineAsync($"CANCEL {push[2]}", default);
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (_engine.GetSessions().Count != 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Empty(_engine.GetSessions());
    }

    [Fact]
    public void AControllerRefusesToStartBesideATranslatorOfAnotherRange()
    {
        using var other = new ControlServer(new SpliceEngine(new FakeKernel(), new FakeClock()), Path.Combine(_dir, "other.sock"),
            new TranslatorSettings(7, "61000-61099", 1000));
        other.Start();
        var e = Assert.Throws<GlassException>(() => StartController(o => o with { ControlSocket = other.Path }));
        Assert.Equal(GlassErrors.ConfigMismatch, e.ErrorId);
        Assert.Contains("61000-61099", e.Message);
        Assert.Contains("62000-62099", e.Message);
        Assert.Contains("portRange", e.Message);

        using var same = new ControlServer(new SpliceEngine(new FakeKernel(), new FakeClock()), Path.Combine(_dir, "same.sock"),
            new TranslatorSettings(7, "62000-62099", 1000));
        same.Start();
        Assert.NotNull(StartController(o => o with { ControlSocket = same.Path }));
    }

    [Fact]
    public async Task AConnectLinksBothSidesInTheTranslatorAndAnswersARouterPort()
    {
        var router = StartController();
        var binding = await BindSilent(router);
        var endpoint = await ControllerConnection.RequestEndpointAsync(router, binding.ChannelId);

        Assert.Equal(IPAddress.Loopback, endpoint.Address);
        Assert.InRange(endpoint.Port, 62000, 62099);
        var session = Assert.Single(_engine.GetSessions());
        Assert.Equal(SessionState.Pending, session.State);
        Assert.Contains((ushort)endpoint.Port, new[] { session.RouterPortA, session.RouterPortB });
        Assert.NotEqual(session.RouterPortA, session.RouterPortB); // both peers are 127.0.0.1
    }

    [Fact]
    public async Task LinksPerAddressAreLimitedAndFreedWhenTheTranslatorReleasesThem()
    {
        var router = StartController(o => o with { MaxLinksPerAddress = 4 });
        var binding = await BindSilent(router);
        // Binder and connector share 127.0.0.1, so each link holds two of its ports.
        await ControllerConnection.RequestEndpointAsync(router, binding.ChannelId);
        await ControllerConnection.RequestEndpointAsync(router, binding.ChannelId);
        var e = await Assert.ThrowsAsync<GlassException>(() => ControllerConnection.RequestEndpointAsync(router, binding.ChannelId));
        Assert.Equal(GlassErrors.LimitExceeded, e.ErrorId);
        Assert.Contains("router ports", e.Message);

        foreach (var s in _engine.GetSessions())
            _engine.Unlink(Glass.Packets.Ipv4.Parse(s.PeerA), s.RouterPortA);
        // The controller hears RELEASED over its watch connection and frees the ports.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                await ControllerConnection.RequestEndpointAsync(router, binding.ChannelId);
                break;
            }
            catch (GlassException x) when (x.ErrorId == GlassErrors.LimitExceeded && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
    }

    [Fact]
    public async Task ABindThatCannotBeAnsweredLeavesNoChannelBound()
    {
        var router = StartController();
        for (var i = 0; i < 20; i++)
        {
            // BIND, and a reset right behind it: the controller binds, then cannot write the OK.
            using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await s.ConnectAsync(router);
            s.LingerState = new System.Net.Sockets.LingerOption(true, 0);
            s.Send(System.Text.Encoding.ASCII.GetBytes("GLASS/1 BIND\n"));
            s.Close();
        }
        WaitUntil(() => _host!.GetStatus().Bindings == 0, "every unanswered bind to be undone");
    }

    [Fact]
    public async Task BindingsPerAddressAreLimited()
    {
        var router = StartController(o => o with { MaxBindingsPerAddress = 1 });
        await Bind(router);
        var e = await Assert.ThrowsAsync<GlassException>(() => Bind(router));
        Assert.Equal(GlassErrors.LimitExceeded, e.ErrorId);
    }

    [Fact]
    public async Task AnExhaustedRangeIsRouterFull()
    {
        var router = StartController(o => o with { PortRange = new PortRange(62000, 62002) });
        var binding = await BindSilent(router);
        await ControllerConnection.RequestEndpointAsync(router, binding.ChannelId);
        var e = await Assert.ThrowsAsync<GlassException>(() => ControllerConnection.RequestEndpointAsync(router, binding.ChannelId));
        Assert.Equal(GlassErrors.RouterFull, e.ErrorId);
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public async Task ABindingReclaimsItsIdWithItsSecretAndOthersCannot()
    {
        var router = StartController();
        var first = await Bind(router, new BindingOptions { ConnectSecret = "door" });
        var (id, secret) = (first.ChannelId, first.Secret);
        first.Stop();
        var again = await Bind(router, new BindingOptions { ChannelId = id, Secret = secret });
        Assert.Equal(id, again.ChannelId);
        var e = await Assert.ThrowsAsync<GlassException>(() => Bind(router, new BindingOptions { ChannelId = id, Secret = "not-it" }));
        Assert.Equal(GlassErrors.Unauthorized, e.ErrorId);
    }

    [Fact]
    public async Task APairedLinkGivesItsPortsBackSoOneAddressOutgrowsTheRange()
    {
        // Two ports, and binder and connector share 127.0.0.1: one link takes both.
        var router = StartController(o => o with { PortRange = new PortRange(62000, 62001) });
        var binding = await BindSilent(router);
        var loopback = Glass.Packets.Ipv4.Parse("127.0.0.1");
        for (var i = 0; i < 3; i++)
        {
            // The next connect waits until the translator reported the previous link paired.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            IPEndPoint endpoint;
            while (true)
            {
                try
                {
                    endpoint = await ControllerConnection.RequestEndpointAsync(router, binding.ChannelId);
                    break;
                }
                catch (GlassException e) when (e.ErrorId == GlassErrors.RouterFull && i > 0 && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(20);
                }
            }
            var session = _engine.GetSessions().Single(s => s.State == SessionState.Pending);
            // Both peers' SYNs arrive and both acknowledge their SYN-ACKs: the session is keyed by its
            // flows and reported PAIRED.
            Assert.Equal(DropReason.WaitingForPeer, _engine.Process(TestPackets.Tcp(loopback, (ushort)(40000 + i), loopback, session.RouterPortA, 1, 0, Glass.Packets.TcpFlags.Syn)));
            Assert.Equal(DropReason.WaitingForPeer, _engine.Process(TestPackets.Tcp(loopback, (ushort)(50000 + i), loopback, session.RouterPortB, 1, 0, Glass.Packets.TcpFlags.Syn)));
            Assert.Equal(DropReason.None, _engine.Process(TestPackets.Tcp(loopback, (ushort)(40000 + i), loopback, session.RouterPortA, 2, 2, Glass.Packets.TcpFlags.Ack)));
            Assert.Equal(DropReason.None, _engine.Process(TestPackets.Tcp(loopback, (ushort)(50000 + i), loopback, session.RouterPortB, 2, 2, Glass.Packets.TcpFlags.Ack)));
        }
        // Three live sessions from one address over a two-port range.
        Assert.Equal(3, _engine.GetSessions().Count(s => s.State == SessionState.Established));
    }

    /// <summary>A raw protocol connection: the test writes and reads the lines itself.</summary>
    private static async Task<Glass.Protocol.LineConnection> Open(IPEndPoint router)
    {
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await s.ConnectAsync(router);
        return new Glass.Protocol.LineConnection(s, 4096);
    }

    private static async Task<string?> Read(Glass.Protocol.LineConnection c) => await c.ReadLineAsync(TimeSpan.FromSeconds(10), default);

    [Fact]
    public async Task PortsTheTranslatorStillHoldsAreRetriedThenRefusedNamingTheCauseAndNoneIsKept()
    {
        // The translator already holds both ports of the range for 127.0.0.1 (as after a controller
        // restart): every attempt is refused with port-in-use.
        var router = StartController(o => o with { PortRange = new PortRange(62000, 62001) });
        var binding = await BindSilent(router);
        var loopback = Glass.Packets.Ipv4.Parse("127.0.0.1");
        Assert.True(_engine.Link(loopback, 62000, loopback, 62001).Success);
        var answer = await ConnectFrom(IPAddress.Loopback, router, binding.ChannelId);
        Assert.StartsWith("ERR port-in-use the translator refused the link: ", answer);
        Assert.Equal(0, _host!.GetStatus().PortsInUse);
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public async Task ABinderIsToldToDialOnlyOnceTheConnectorsSynIsIn()
    {
        var router = StartController();
        var (id, silent) = await BindSilent(router);
        var answer = await ConnectFrom(IPAddress.Loopback, router, id);
        Assert.StartsWith("OK ", answer);
        var connectorPort = ushort.Parse(answer!.Split(' ')[2]);
        // Nothing came before the PONG: a connector that only asks costs the binder nothing.
        await silent.WriteLineAsync("PING", default);
        Assert.Equal("PONG", await Read(silent));

        ConnectorDials(connectorPort);
        var push = (await Read(silent))!.Split(' ');
        Assert.Equal("CONNECT", push[0]);
        var session = Assert.Single(_engine.GetSessions());
        Assert.Equal(session.RouterPortB, ushort.Parse(push[2]));
        // A second SYN of the same link (a retransmission, a rival) tells it nothing more.
        ConnectorDials(connectorPort, 40001);
        await silent.WriteLineAsync("PING", default);
        Assert.Equal("PONG", await Read(silent));
    }

    [Fact]
    public async Task ALinkAskedForAheadIsToldAtOnceOnlyToABinderThatDialsAhead()
    {
        var router = StartController();
        async Task<string?> ConnectAhead(string channel)
        {
            using var c = await Open(router);
            await c.WriteLineAsync($"GLASS/1 CONNECT {channel} ahead=1", default);
            return await Read(c);
        }

        // A binder that never said AHEAD (an older one) hears of the link only at the SYN, as before.
        var (oldId, old) = await BindSilent(router);
        var answer = await ConnectAhead(oldId);
        Assert.StartsWith("OK ", answer);
        await old.WriteLineAsync("PING", default);
        Assert.Equal("PONG", await Read(old));
        ConnectorDials(ushort.Parse(answer!.Split(' ')[2]));
        Assert.Matches(@"^CONNECT 127\.0\.0\.1 \d+$", await Read(old));

        // One that did is told before any SYN, marked so that it dials only the router for now.
        var (id, ahead) = await BindSilent(router);
        await ahead.WriteLineAsync("AHEAD", default);
        await ahead.WriteLineAsync("PING", default);
        Assert.Equal("PONG", await Read(ahead)); // AHEAD has no answer
        answer = await ConnectAhead(id);
        Assert.StartsWith("OK ", answer);
        var push = (await Read(ahead))!.Split(' ');
        Assert.Equal(("CONNECT", "ahead"), (push[0], push[3]));
        var link = Assert.Single(_engine.GetSessions(), s => s.RouterPortA == ushort.Parse(answer!.Split(' ')[2]));
        Assert.Equal(link.RouterPortB, ushort.Parse(push[2]));
        // The SYN then tells it nothing more; a plain CONNECT still waits for its SYN.
        ConnectorDials(link.RouterPortA);
        answer = await ConnectFrom(IPAddress.Loopback, router, id);
        Assert.StartsWith("OK ", answer);
        await ahead.WriteLineAsync("PING", default);
        Assert.Equal("PONG", await Read(ahead));
    }

    [Fact]
    public async Task AnArrivalMissedWhileTheWatchWasDownIsToldWhenItIsBack()
    {
        var router = StartController();
        var (id, silent) = await BindSilent(router);
        var answer = await ConnectFrom(IPAddress.Loopback, router, id);
        Assert.StartsWith("OK ", answer);
        // The control socket goes away; meanwhile the connector's SYN arrives, and nobody hears ARRIVED.
        _translator.Dispose();
        WaitUntil(() => !_host!.Watching, "the controller to notice its watch is gone");
        ConnectorDials(ushort.Parse(answer!.Split(' ')[2]));
        using var back = new ControlServer(_engine, _translator.Path);
        back.Start();

        // Back, the controller finds the link still pending and untold: the binder dials now.
        Assert.StartsWith("CONNECT 127.0.0.1 ", await Read(silent));
    }

    [Fact]
    public async Task AConnectorsSessionCancelsItsOwnLinkAndNoOtherOne()
    {
        var router = StartController();
        var (id, silent) = await BindSilent(router);
        using var mine = await Open(router);
        using var theirs = await Open(router);
        foreach (var c in new[] { mine, theirs })
        {
            await c.WriteLineAsync("GLASS/1 SESSION", default);
            Assert.Equal("OK", await Read(c));
        }
        await mine.WriteLineAsync($"GLASS/1 CONNECT {id}", default);
        var port = (await Read(mine))!.Split(' ')[2];
        ConnectorDials(ushort.Parse(port));
        Assert.StartsWith("CONNECT ", await Read(silent));

        // Another session (same address, even) cannot end it; nor can a request on its own connection.
        await theirs.WriteLineAsync($"GLASS/1 CANCEL {port}", default);
        Assert.Equal($"ERR not-found no link of this session waits on router port {port}", await Read(theirs));
        Assert.StartsWith("ERR bad-request CANCEL names a router port given in the same session", await ConnectFromRaw(router, $"GLASS/1 CANCEL {port}"));
        Assert.Single(_engine.GetSessions());
        await mine.WriteLineAsync("GLASS/1 CANCEL 0", default);
        Assert.StartsWith("ERR bad-request CANCEL needs one router port", await Read(mine));

        var kernel = _kernel;
        var sent = kernel.Sent.Count;
        await mine.WriteLineAsync($"GLASS/1 CANCEL {port}", default);
        Assert.Equal("OK", await Read(mine));
        Assert.Empty(_engine.GetSessions());
        // The connector's waiting SYN is refused at once: its connect fails now, not at its next retransmission.
        var rst = kernel.Parse(sent);
        Assert.Equal(Glass.Packets.TcpFlags.Rst | Glass.Packets.TcpFlags.Ack, rst.Flags);
        Assert.Equal(1001u, rst.Acknowledgment);
        // Cancelled once: the same port is not this session's any more.
        await mine.WriteLineAsync($"GLASS/1 CANCEL {port}", default);
        Assert.StartsWith("ERR not-found ", await Read(mine));
    }

    private static async Task<string?> ConnectFromRaw(IPEndPoint router, string line)
    {
        using var c = await Open(router);
        await c.WriteLineAsync(line, default);
        return await Read(c);
    }

    [Fact]
    public async Task ASessionAnswersPipelinedRequestsInOrderAndSurvivesARefusal()
    {
        var router = StartController();
        var binding = await BindSilent(router);
        using var c = await Open(router);
        await c.WriteLineAsync("GLASS/1 SESSION", default);
        Assert.Equal("OK", await Read(c));
        // All at once, before reading anything: the answers come back in the order asked.
        await c.WriteLineAsync(string.Join("\n",
            $"GLASS/1 CONNECT {binding.ChannelId}",
            "GLASS/1 LOOKUP 00000000000000000000000000000000",
            "GLASS/1 BIND",
            $"GLASS/1 LOOKUP {binding.ChannelId}",
            $"GLASS/1 CONNECT {binding.ChannelId}"), default);
        var first = await Read(c);
        Assert.StartsWith("ERR unknown-channel ", await Read(c));
        Assert.Equal("ERR bad-request a session carries only CONNECT, LOOKUP and CANCEL", await Read(c));
        Assert.Equal("OK", await Read(c));
        var last = await Read(c);
        Assert.Matches(@"^OK 127\.0\.0\.1 620\d\d$", first);
        Assert.Matches(@"^OK 127\.0\.0\.1 620\d\d$", last);
        Assert.NotEqual(first, last);
        Assert.Equal(2, _engine.GetSessions().Count);
    }

    [Fact]
    public async Task ASessionThatStopsReadingItsAnswersAndResetsGivesItsPlaceBack()
    {
        var router = StartController();
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        s.ReceiveBufferSize = 4096; // a small window: the controller's answers back up soon
        await s.ConnectAsync(router);
        s.Send(System.Text.Encoding.ASCII.GetBytes("GLASS/1 SESSION\n"));
        WaitUntil(() => _host!.GetStatus().Sessions == 1, "the session to be counted");

        // Requests, never reading an answer, until the controller stops taking them: its answers
        // fill both sockets' buffers, then its queue of answers, and then it stops reading.
        var chunk = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("GLASS/1 LOOKUP 00000000000000000000000000000000\n", 1000)));
        s.Blocking = false;
        var stalledSince = DateTime.UtcNow;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow - stalledSince < TimeSpan.FromSeconds(1))
        {
            Assert.True(DateTime.UtcNow < deadline, "the controller kept reading requests for 60 s");
            if (s.Send(chunk, System.Net.Sockets.SocketFlags.None, out var error) > 0)
                stalledSince = DateTime.UtcNow;
            else
            {
                Assert.Equal(System.Net.Sockets.SocketError.WouldBlock, error);
                s.Poll(100_000, System.Net.Sockets.SelectMode.SelectWrite);
            }
        }
        Assert.Equal(1, _host!.GetStatus().Sessions);

        // The client goes away with a reset: the controller's next answer fails, and the session,
        // stuck waiting for room among its answers, must end too.
        s.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        s.Close();
        WaitUntil(() => _host!.GetStatus().Sessions == 0, "the stuck session to give its place back");
    }

    [Fact]
    public async Task ASessionNeedsTheConnectTokenAndCountsAgainstItsAddress()
    {
        var router = StartController(o => o with { ConnectToken = "tok", MaxSessionsPerAddress = 1 });
        using (var c = await Open(router))
        {
            await c.WriteLineAsync("GLASS/1 SESSION", default);
            Assert.StartsWith("ERR unauthorized ", await Read(c));
            Assert.Null(await Read(c));
        }
        using var held = await Open(router);
        await held.WriteLineAsync("GLASS/1 SESSION token=tok", default);
        Assert.Equal("OK", await Read(held));
        using var second = await Open(router);
        await second.WriteLineAsync("GLASS/1 SESSION token=tok", default);
        Assert.StartsWith("ERR limit-exceeded ", await Read(second));
    }

    [Fact]
    public async Task AForwardersRequestsShareOneSessionAndFallBackWhenRefusedOne()
    {
        var host = new ControllerHost(new ControllerOptions
        {
            Address = IPAddress.Loopback, Port = 0, ControlSocket = _translator.Path,
            PortRange = new PortRange(62000, 62099), MaxSessionsPerAddress = 1, AllowPlaintext = true,
        });
        host.Start();
        _owned.Add(host);
        var router = host.LocalEndPoint!;
        var binding = await BindSilent(router);
        var connect = new Glass.Protocol.ControllerRequest { Verb = Glass.Protocol.ControllerVerb.Connect, ChannelId = binding.ChannelId };
        using var a = new ControllerSession(router, null);
        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => a.RequestAsync(connect, default)));
        Assert.Equal(20, answers.Select(w => w[1]).Distinct().Count());
        Assert.Equal(1, host.GetStatus().Sessions);
        // The address's one session is taken: a second client still gets answers, a connection each.
        using var b = new ControllerSession(router, null);
        Assert.Equal(2, (await b.RequestAsync(connect, default)).Length);
        Assert.Equal(1, host.GetStatus().Sessions);
        Assert.Equal(21, host.GetStatus().Connects);
    }

    [Fact]
    public async Task ASessionClosedByTheControllerIsReplacedOnTheNextRequest()
    {
        var host = new ControllerHost(new ControllerOptions
        {
            Address = IPAddress.Loopback, Port = 0, ControlSocket = _translator.Path,
            PortRange = new PortRange(62000, 62099), SessionIdleTimeout = TimeSpan.FromMilliseconds(100), AllowPlaintext = true,
        });
        host.Start();
        _owned.Add(host);
        var router = host.LocalEndPoint!;
        var binding = await BindSilent(router);
        var lookup = new Glass.Protocol.ControllerRequest { Verb = Glass.Protocol.ControllerVerb.Lookup, ChannelId = binding.ChannelId };
        using var session = new ControllerSession(router, null);
        await session.RequestAsync(lookup, default);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (host.GetStatus().Sessions != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the controller never closed the idle session");
            await Task.Delay(10);
        }
        Assert.Empty(await session.RequestAsync(lookup, default));
    }

    [Fact]
    public async Task AControllerWithoutSessionsIsAskedOverAConnectionPerRequest()
    {
        // What a controller from before sessions answers: SESSION is an unknown request.
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var seen = new List<string>();
        var server = Task.Run(async () =>
        {
            for (var i = 0; i < 3; i++)
            {
                using var c = new Glass.Protocol.LineConnection(await listener.AcceptAsync(), 4096);
                var line = await c.ReadLineAsync(default);
                lock (seen)
                    seen.Add(line!);
                await c.WriteLineAsync(line!.StartsWith("GLASS/1 SESSION") ? "ERR bad-request unknown request 'SESSION'" : "OK 127.0.0.1 6" + i, default);
            }
        });
        using var session = new ControllerSession((IPEndPoint)listener.LocalEndPoint!, "tok", trust: RouterTrust.Unencrypted("old"));
        string? notice = null;
        session.Notice = m => notice = m;
        var connect = new Glass.Protocol.ControllerRequest { Verb = Glass.Protocol.ControllerVerb.Connect, ChannelId = "0123456789abcdef0123456789abcdef" };
        Assert.Equal(new[] { "127.0.0.1", "61" }, await session.RequestAsync(connect, default));
        Assert.Equal(new[] { "127.0.0.1", "62" }, await session.RequestAsync(connect, default));
        await server;
        Assert.Equal(new[] { "GLASS/1 SESSION token=tok", connect.Format() + " token=tok", connect.Format() + " token=tok" }, seen);
        Assert.Contains("does not keep sessions", notice);
    }
}
