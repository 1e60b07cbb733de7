using System.Net;
using System.Net.Sockets;
using System.Text;
using Glass.Client;

namespace Glass.Tests.Client;

public class BindingTests
{
    /// <summary>A controller that answers BIND and then pushes what the test writes.</summary>
    private static async Task<(GlassBinding Binding, StreamWriter Push, TcpClient Control)> BindToFake(TcpListener fake, string? ports = null)
    {
        var (starting, push, control) = await AnswerBind(fake, ports is null ? "" : " ports=" + ports);
        return (await starting, push, control);
    }

    /// <summary>A binding starting against the fake, whose BIND is answered OK, an id, a secret and <paramref name="more"/>.</summary>
    private static async Task<(Task<GlassBinding> Starting, StreamWriter Push, TcpClient Control)> AnswerBind(TcpListener fake, string more,
        IPEndPoint? local = null)
    {
        // A fake that speaks plain GLASS/1 (the controller's TLS is tested on its own).
        var starting = GlassBinding.StartAsync((IPEndPoint)fake.LocalEndpoint, local ?? new IPEndPoint(IPAddress.Loopback, 9),
            new BindingOptions { Trust = RouterTrust.Unencrypted("fake") });
        var control = await fake.AcceptTcpClientAsync();
        var reader = new StreamReader(control.GetStream(), Encoding.ASCII);
        var request = await reader.ReadLineAsync();
        Assert.StartsWith("GLASS/1 BIND", request);
        var push = new StreamWriter(control.GetStream(), Encoding.ASCII) { AutoFlush = true, NewLine = "\n" };
        await push.WriteLineAsync($"OK {new string('a', 32)} {new string('b', 32)}{more}");
        return (starting, push, control);
    }

    [Fact]
    public async Task ABinderDialsOnlyItsOwnRouterWhateverItsControlConnectionNames()
    {
        using var fake = new TcpListener(IPAddress.Loopback, 0);
        fake.Start();
        using var relay = new TcpListener(IPAddress.Loopback, 0); // stands for a router port
        relay.Start();
        var (binding, push, control) = await BindToFake(fake);
        using var _ = binding;
        using var __ = control;
        var warnings = new List<string>();
        binding.Message += (m, warning) => { if (warning) lock (warnings) warnings.Add(m); };

        await push.WriteLineAsync("CONNECT 192.0.2.7 22");
        await push.WriteLineAsync($"CONNECT 127.0.0.1 {((IPEndPoint)relay.LocalEndpoint).Port}");

        // The second, to the router's own address, is dialled; the first never is.
        using var dialled = await relay.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (binding.Failures == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.True(binding.Failures >= 1);
        lock (warnings)
            Assert.Contains(warnings, w => w.Contains("Refused to dial 192.0.2.7:22") && w.Contains("127.0.0.1"));
    }

    [Fact]
    public async Task ABinderToldAheadTakesAnUnusedLinkQuietlyAndDialsItsServerOnlyForAUsedOne()
    {
        using var fake = new TcpListener(IPAddress.Loopback, 0);
        fake.Start();
        using var server = new TcpListener(IPAddress.Loopback, 0); // the local server
        server.Start();
        using var relay = new TcpListener(IPAddress.Loopback, 0); // a router port that answers
        relay.Start();
        int closed;
        using (var probe = new TcpListener(IPAddress.Loopback, 0)) // one that refuses, as for a spare given back
        {
            probe.Start();
            closed = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var (starting, push, control) = await AnswerBind(fake, "", (IPEndPoint)server.LocalEndpoint);
        using var binding = await starting;
        using var _ = control;
        var reader = new StreamReader(control.GetStream(), Encoding.ASCII);
        Assert.Equal("AHEAD", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        var messages = new List<(string Text, bool Warning)>();
        binding.Message += (m, warning) => { lock (messages) messages.Add((m, warning)); };

        await push.WriteLineAsync($"CONNECT 127.0.0.1 {closed} ahead");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!messages.Any(m => m.Text.Contains("went unused")) && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        lock (messages)
            Assert.Contains(messages, m => m.Text.Contains($"127.0.0.1:{closed} went unused") && !m.Warning);
        Assert.Equal((0L, 0L), (binding.Failures, binding.Connections));
        Assert.False(server.Pending(), "the local server was dialed for a link that went unused");

        await push.WriteLineAsync($"CONNECT 127.0.0.1 {((IPEndPoint)relay.LocalEndpoint).Port} ahead");
        using var dialled = await relay.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
        using var served = await server.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1L, binding.Connections);
        // A refused link sends no CANCEL: the controller gave it back already.
        Assert.False(control.GetStream().DataAvailable);
    }

    [Fact]
    public async Task ABinderDialsOnlyPortsOfTheRangeItsControllerAnnounced()
    {
        using var fake = new TcpListener(IPAddress.Loopback, 0);
        fake.Start();
        using var relay = new TcpListener(IPAddress.Loopback, 0); // stands for a router port
        relay.Start();
        var relayPort = ((IPEndPoint)relay.LocalEndpoint).Port;
        using var outside = new TcpListener(IPAddress.Loopback, 0); // a port of the router's host outside its range
        outside.Start();
        var outsidePort = ((IPEndPoint)outside.LocalEndpoint).Port;
        var (binding, push, control) = await BindToFake(fake, $"{relayPort}-{relayPort}");
        using var _ = binding;
        using var __ = control;
        var warnings = new List<string>();
        binding.Message += (m, warning) => { if (warning) lock (warnings) warnings.Add(m); };

        await push.WriteLineAsync($"CONNECT 127.0.0.1 {outsidePort}");
        await push.WriteLineAsync($"CONNECT 127.0.0.1 {relayPort}");

        // The port of the range is dialled (pushed after the other, so the other was judged first); the other never is.
        using var dialled = await relay.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(outside.Pending());
        lock (warnings)
            Assert.Contains(warnings, w => w.Contains($"Refused to dial 127.0.0.1:{outsidePort}") && w.Contains($"relay range {relayPort}-{relayPort}"));
    }

    [Theory]
    [InlineData("ports=1-x")]
    [InlineData("extra")]
    public async Task ABindAnswerWithAMalformedRangeIsAProtocolError(string third)
    {
        using var fake = new TcpListener(IPAddress.Loopback, 0);
        fake.Start();
        var (starting, _, control) = await AnswerBind(fake, " " + third);
        using var _ = control;
        var e = await Assert.ThrowsAsync<GlassException>(() => starting);
        Assert.Equal(GlassErrors.ProtocolError, e.ErrorId);
        Assert.Contains(third, e.Message);
    }
}
