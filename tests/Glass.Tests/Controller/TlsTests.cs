using System.Net;
using System.Net.Sockets;
using System.Text;
using Glass.Client;
using Glass.Config;
using Glass.Controller;
using Glass.Protocol;
using Glass.Translator;
using Glass.Tests.Translator;

namespace Glass.Tests.Controller;

/// <summary>
/// The controller's TLS: the router's key generated once and kept, clients pinning it (given,
/// or trusted on first use and recorded), plain GLASS/1 and the binary messages only where allowed.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class TlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("glass-tls-").FullName;
    private readonly ControlServer _translator;
    private readonly List<IDisposable> _owned = new();

    public TlsTests()
    {
        _translator = new ControlServer(new SpliceEngine(new FakeKernel(), new FakeClock()), Path.Combine(_dir, "t.sock"));
        _translator.Start();
    }

    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
            _owned[i].Dispose();
        _translator.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private ControllerHost StartController(RouterIdentity? identity = null, bool allowPlaintext = false, int port = 0)
    {
        var host = new ControllerHost(new ControllerOptions
        {
            Address = IPAddress.Loopback,
            Port = port,
            ControlSocket = _translator.Path,
            PortRange = new PortRange(62000, 62099),
            Identity = identity,
            AllowPlaintext = allowPlaintext,
        });
        host.Start();
        _owned.Add(host);
        return host;
    }

    private async Task<GlassBinding> Bind(ControllerHost host, RouterTrust? trust)
    {
        var b = await GlassBinding.StartAsync(host.LocalEndPoint!, new IPEndPoint(IPAddress.Loopback, 9), new BindingOptions { Trust = trust });
        _owned.Add(b);
        return b;
    }

    /// <summary>One request in plain text; the answer line.</summary>
    private static async Task<string?> AskPlain(IPEndPoint router, string request)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(router);
        using var stream = new NetworkStream(s);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request + "\n"));
        return await new StreamReader(stream).ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void FingerprintsAreReadAsUsersWriteThem()
    {
        const string canonical = "sha256:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
        Assert.True(RouterFingerprint.TryNormalize("SHA256:3B6A27BCCEB6A42D62A3A8D02A6F0D73653215771DE243A63AC048A18B59DA29", out var f));
        Assert.Equal(canonical, f);
        Assert.True(RouterFingerprint.TryNormalize(string.Join(':', Enumerable.Range(0, 32).Select(i => canonical.Substring(7 + 2 * i, 2))), out f));
        Assert.Equal(canonical, f);
        Assert.False(RouterFingerprint.TryNormalize("sha256:3b6a", out _));
        Assert.False(RouterFingerprint.TryNormalize(canonical.Replace('3', 'g'), out _));
        Assert.Equal(GlassErrors.BadRequest, Assert.Throws<GlassException>(() => RouterFingerprint.Normalize("md5:00")).ErrorId);
    }

    [Fact]
    public void TheKeyIsGeneratedOwnerOnlyOnceAndReadBackOnEveryLaterStart()
    {
        var path = Path.Combine(_dir, "state", "controller-7000.pem");
        string first;
        using (var made = RouterIdentity.LoadOrCreate(path))
        {
            Assert.True(made.Created);
            first = made.Fingerprint;
            Assert.Matches("^sha256:[0-9a-f]{64}$", first);
            Assert.Equal(first, RouterFingerprint.Of(made.Certificate));
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        Assert.Contains("PRIVATE KEY", File.ReadAllText(path));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));

        // A restart (two, racing) reads the same key and warns of nothing.
        var warnings = new List<string>();
        using var again = RouterIdentity.LoadOrCreate(path, warn: warnings.Add);
        using var racing = RouterIdentity.LoadOrCreate(path, warn: warnings.Add);
        Assert.False(again.Created);
        Assert.Equal(first, again.Fingerprint);
        Assert.Equal(first, racing.Fingerprint);
        Assert.Empty(warnings);

        // Readable by others: still served, with a warning that says how to fix it.
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        using var loose = RouterIdentity.LoadOrCreate(path, warn: warnings.Add);
        Assert.Equal(first, loose.Fingerprint);
        Assert.Contains(warnings, w => w.Contains("chmod 600") && w.Contains(path));
    }

    [Fact]
    public void AnOperatorsCertificateAndKeyMayLiveInTwoFilesAndABrokenFileSaysSo()
    {
        var combined = Path.Combine(_dir, "combined.pem");
        using var made = RouterIdentity.LoadOrCreate(combined);
        var text = File.ReadAllText(combined);
        var split = text.IndexOf("-----BEGIN PRIVATE KEY-----", StringComparison.Ordinal);
        var cert = Path.Combine(_dir, "cert.pem");
        var key = Path.Combine(_dir, "key.pem");
        File.WriteAllText(cert, text[..split]);
        File.WriteAllText(key, text[split..]);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var apart = RouterIdentity.LoadOrCreate(cert, key);
        Assert.Equal(made.Fingerprint, apart.Fingerprint);

        // A certificate without its key is not generated over: the operator must fix it.
        var e = Assert.Throws<GlassException>(() => RouterIdentity.LoadOrCreate(cert));
        Assert.Equal("tls-key-unavailable", e.ErrorId);
        Assert.Contains(cert, e.Message);
        var broken = Path.Combine(_dir, "broken.pem");
        File.WriteAllText(broken, "not a certificate");
        Assert.Equal("tls-key-unavailable", Assert.Throws<GlassException>(() => RouterIdentity.LoadOrCreate(broken)).ErrorId);
    }

    [Fact]
    public async Task AClientPinnedToTheRoutersKeyBindsAndConnectsInsideTls()
    {
        var host = StartController(RouterIdentity.LoadOrCreate(Path.Combine(_dir, "r.pem")));
        _owned.Add(host.Identity);
        var trust = RouterTrust.Pinned("127.0.0.1:7000", host.Fingerprint.ToUpperInvariant().Replace("SHA256:", ""));
        var binding = await Bind(host, trust);
        var endpoint = await ControllerConnection.RequestEndpointAsync(host.LocalEndPoint!, binding.ChannelId, trust: trust);
        Assert.InRange(endpoint.Port, 62000, 62099);
        Assert.Equal(1, host.GetStatus().Bindings);
        Assert.Equal(host.Fingerprint, host.GetStatus().Fingerprint);
    }

    [Fact]
    public async Task ARouterPresentingAnotherKeyIsRefusedBeforeAnythingIsSent()
    {
        var host = StartController();
        using var other = RouterIdentity.Ephemeral();
        var trust = RouterTrust.Pinned("router.example:7000", other.Fingerprint, "/home/u/.config/glass/client.yaml");
        var e = await Assert.ThrowsAsync<GlassException>(() => GlassBinding.StartAsync(host.LocalEndPoint!, new IPEndPoint(IPAddress.Loopback, 9),
            new BindingOptions { Trust = trust, ConnectSecret = "door" }));
        Assert.Equal(GlassErrors.RouterFingerprintMismatch, e.ErrorId);
        // Both keys, where the pin came from, and how to pin the new key on purpose.
        Assert.Contains(host.Fingerprint, e.Message);
        Assert.Contains(other.Fingerprint, e.Message);
        Assert.Contains("/home/u/.config/glass/client.yaml", e.Message);
        Assert.Contains($"Set-GlassClientConfig -Router router.example:7000 -RouterFingerprint {host.Fingerprint}", e.Message);
        e = await Assert.ThrowsAsync<GlassException>(() => ControllerConnection.RequestEndpointAsync(host.LocalEndPoint!, new string('0', 32), trust: trust));
        Assert.Equal(GlassErrors.RouterFingerprintMismatch, e.ErrorId);
        using var session = new ControllerSession(host.LocalEndPoint!, null, trust: trust);
        e = await Assert.ThrowsAsync<GlassException>(() => session.RequestAsync(new ControllerRequest { Verb = ControllerVerb.Lookup, ChannelId = new string('0', 32) }, default));
        Assert.Equal(GlassErrors.RouterFingerprintMismatch, e.ErrorId);
        // The controller never got a request: no binding, no refusal, no bad request.
        var status = host.GetStatus();
        Assert.Equal((0, 0L, 0L), (status.Bindings, status.Refused, status.BadRequests));
    }

    [Fact]
    public async Task TrustOnFirstUseRecordsTheKeyOnceAndThenHoldsToIt()
    {
        var first = StartController();
        var recorded = new List<string>();
        var trust = RouterTrust.FirstUse("203.0.113.1:7000", recorded.Add);
        Assert.Null(trust.Fingerprint);
        var binding = await Bind(first, trust);
        await ControllerConnection.RequestEndpointAsync(first.LocalEndPoint!, binding.ChannelId, trust: trust);
        Assert.Equal(new[] { first.Fingerprint }, recorded);
        Assert.Equal(first.Fingerprint, trust.Fingerprint);

        // Another router (another key) under the same trust: refused, and nothing more recorded.
        var impostor = StartController();
        var e = await Assert.ThrowsAsync<GlassException>(() => ControllerConnection.RequestEndpointAsync(impostor.LocalEndPoint!, binding.ChannelId, trust: trust));
        Assert.Equal(GlassErrors.RouterFingerprintMismatch, e.ErrorId);
        Assert.Contains("first use", e.Message);
        Assert.Single(recorded);
    }

    [Fact]
    public async Task ABindingWhoseRouterComesBackWithAnotherKeyStopsForGood()
    {
        var first = StartController();
        var port = first.LocalEndPoint!.Port;
        var binding = await Bind(first, null); // trusts the first key for its whole life
        first.Stop();
        // The same address and port, another key: a reconnection must not hand it the secret.
        var impostor = StartController(port: port);
        var e = await Assert.ThrowsAsync<GlassException>(() => binding.Completion.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(GlassErrors.RouterFingerprintMismatch, e.ErrorId);
        Assert.Equal(0, impostor.GetStatus().Bindings);
    }

    [Fact]
    public async Task PlainGlassAndTheBinaryMessagesAreRefusedUnlessAllowed()
    {
        var host = StartController();
        var refused = await AskPlain(host.LocalEndPoint!, "GLASS/1 BIND");
        Assert.StartsWith("ERR plaintext-refused ", refused);
        Assert.Contains("tls.allowPlaintext", refused);
        // A plain client gets the error id, not a broken TLS handshake.
        var e = await Assert.ThrowsAsync<GlassException>(() => GlassBinding.StartAsync(host.LocalEndPoint!, new IPEndPoint(IPAddress.Loopback, 9),
            new BindingOptions { Trust = RouterTrust.Unencrypted("r") }));
        Assert.Equal(GlassErrors.PlaintextRefused, e.ErrorId);

        // The binary CONN: eight zero bytes, as for any refusal; BIND: closed without a binding.
        using (var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await s.ConnectAsync(host.LocalEndPoint!);
            await s.SendAsync(Encoding.ASCII.GetBytes("CONN").Concat(new byte[16]).ToArray());
            var answer = new byte[16];
            var n = 0;
            while (n < 8 && await s.ReceiveAsync(answer.AsMemory(n)) is > 0 and var got)
                n += got;
            Assert.Equal(new byte[8], answer[..8]);
        }
        using (var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await s.ConnectAsync(host.LocalEndPoint!);
            await s.SendAsync(Encoding.ASCII.GetBytes("BIND").Concat(Enumerable.Range(1, 16).Select(i => (byte)i)).ToArray());
            Assert.Equal(0, await s.ReceiveAsync(new byte[8]).WaitAsync(TimeSpan.FromSeconds(10)));
        }
        Assert.Equal(0, host.GetStatus().Bindings);
        // The raw line, the plain binding, CONN and BIND.
        Assert.Equal(4, host.GetStatus().RefusedByCode![GlassErrors.PlaintextRefused]);

        // STATUS carries no secret: this host may ask in plain.
        var status = await ControllerConnection.QueryStatusAsync(host.LocalEndPoint!);
        Assert.Equal(host.Fingerprint, status.Fingerprint);
    }

    [Fact]
    public async Task ARouterThatAllowsPlaintextServesBothOnOnePort()
    {
        var host = StartController(allowPlaintext: true);
        var plain = await Bind(host, RouterTrust.Unencrypted("r"));
        var secured = await Bind(host, RouterTrust.Pinned("r", host.Fingerprint));
        Assert.Equal(2, host.GetStatus().Bindings);
        await ControllerConnection.RequestEndpointAsync(host.LocalEndPoint!, plain.ChannelId, trust: RouterTrust.Pinned("r", host.Fingerprint));
        await ControllerConnection.RequestEndpointAsync(host.LocalEndPoint!, secured.ChannelId, trust: RouterTrust.Unencrypted("r"));
        Assert.Equal(2, host.GetStatus().Connects);
    }

    [Fact]
    public async Task ATlsHandshakeThatGoesNowhereIsCutOffAndCounted()
    {
        var host = StartController();
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(host.LocalEndPoint!);
        // A TLS record header with garbage after it.
        await s.SendAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5 });
        // Closed by the controller (after a TLS alert, or with a reset).
        try
        {
            var buffer = new byte[64];
            while (await s.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(15)) > 0)
                Assert.Equal(0x15, buffer[0]); // RFC 8446 alert(21), never a plain answer
        }
        catch (SocketException)
        {
        }
        await WaitFor(() => host.GetStatus().TlsFailures == 1);
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        var deadline = Environment.TickCount64 + 30_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "the condition did not come true within 30 s");
            await Task.Delay(20);
        }
    }

    [Fact]
    public void PinsAreKeptPerRouterBesideTheOtherSettingsOwnerOnly()
    {
        var path = Path.Combine(_dir, "config", "client.yaml");
        new ClientConfig { Router = "router.example", Token = "tok" }.Save(path);
        var a = "sha256:" + new string('a', 64);
        var b = "sha256:" + new string('b', 64);
        ClientConfig.RecordPin(path, "Router.Example", a);
        ClientConfig.RecordPin(path, "203.0.113.1:7100", b);
        var c = ClientConfig.Load(path);
        Assert.Equal(("router.example", "tok"), (c.Router, c.Token));
        Assert.Equal(a, c.PinFor("router.example:7000"));
        Assert.Equal(b, c.PinFor("203.0.113.1:7100"));
        Assert.Null(c.PinFor("203.0.113.1"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(a, ClientConfig.Parse(c.Format(), path).PinFor("router.example"));
        Assert.Null(c.WithPin("router.example", null).PinFor("router.example"));

        var e = Assert.Throws<ConfigException>(() => ClientConfig.Parse("routers:\n  \"r:7000\": md5:1\n", "c.yaml"));
        Assert.Equal("routers.r:7000", e.Key);
        Assert.Equal(2, e.Line);
        Assert.True(ClientConfig.Parse("plaintext: true\n", "c.yaml").Plaintext);
    }

    [Fact]
    public void TheRouterConfigNamesTheKeyAndWhetherPlaintextIsServed()
    {
        var c = RouterConfig.Parse("tls:\n  certificate: /k/cert.pem\n  key: /k/key.pem\n  allowPlaintext: true\n", "r.yaml");
        Assert.Equal(("/k/cert.pem", "/k/key.pem", (bool?)true), (c.TlsCertificate, c.TlsKey, c.AllowPlaintext));
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("tls:\n  key: /k/key.pem\n", "r.yaml"));
        Assert.Equal("tls.key", e.Key);
        e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("tls:\n  allowPlaintext: yes\n", "r.yaml"));
        Assert.Equal("tls.allowPlaintext", e.Key);
    }
}
