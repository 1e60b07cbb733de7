using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Glass.Controller;
using Glass.Translator;
using Glass.Tests.Translator;

namespace Glass.Tests.Controller;

/// <summary>
/// What a stranger's flood of controller connections leaves in the counters, and how long one
/// may hold its slot: the regressions tests/pester/ControllerAttack.Tests.ps1 found.
/// </summary>
public sealed class ControllerFloodTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("glass-flood-").FullName;
    private readonly ControlServer _translator;
    private readonly List<IDisposable> _owned = new();

    public ControllerFloodTests()
    {
        _translator = new ControlServer(new SpliceEngine(new FakeKernel(), new FakeClock()), Path.Combine(_dir, "t.sock"));
        _translator.Start();
    }

    public void Dispose()
    {
        foreach (var d in _owned)
            d.Dispose();
        _translator.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private ControllerHost StartController(TimeSpan requestTimeout, bool allowPlaintext = false)
    {
        var host = new ControllerHost(new ControllerOptions
        {
            Address = IPAddress.Loopback,
            Port = 0,
            ControlSocket = _translator.Path,
            PortRange = new PortRange(62000, 62099),
            RequestTimeout = requestTimeout,
            AllowPlaintext = allowPlaintext,
        });
        host.Start();
        _owned.Add(host);
        return host;
    }

    private async Task<Socket> Connect(ControllerHost host)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _owned.Add(s);
        await s.ConnectAsync(host.LocalEndPoint!);
        return s;
    }

    /// <summary>Everything the controller sends until it closes the connection.</summary>
    private static async Task<string> ReadToClose(Socket s)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await s.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(30))) > 0)
                all.Write(buffer, 0, n);
        }
        catch (SocketException)
        {
            // A reset after the answer: what came before it is the answer.
        }
        return Encoding.Latin1.GetString(all.ToArray());
    }

    [Fact]
    public async Task ConnectionsThatSendNoWholeRequestInTimeAreCountedAndClosed()
    {
        var host = StartController(TimeSpan.FromSeconds(1));
        // Silent; half a request line; a TLS ClientHello whose sender never goes on.
        var silent = await Connect(host);
        var half = await Connect(host);
        await half.SendAsync("GLASS/1 CONNECT "u8.ToArray());
        var hello = await Connect(host);
        await hello.SendAsync(await CaptureClientHello());

        Assert.Equal("", await ReadToClose(silent));
        Assert.StartsWith("ERR bad-request No complete request arrived within 1 s", await ReadToClose(half));
        Assert.Equal(0x16, (await ReadToClose(hello))[0]); // the server's flight, then the close
        await WaitFor(() => host.GetStatus().RequestTimeouts == 3);

        var status = host.GetStatus();
        Assert.Equal(3, status.RequestTimeouts);
        // The half line was answered bad-request, and is counted so in both places.
        Assert.Equal(1, status.BadRequests);
        Assert.Equal(1, status.RefusedByCode!.GetValueOrDefault(GlassErrors.BadRequest));
        Assert.Equal(0, status.TlsFailures);
    }

    [Fact]
    public async Task AFirstRequestTrickledOverMoreThanTheRequestTimeoutIsCutOff()
    {
        // Each piece comes well within the timeout of the one before; the whole does not.
        var host = StartController(TimeSpan.FromSeconds(2), allowPlaintext: true);
        var s = await Connect(host);
        await s.SendAsync("G"u8.ToArray());
        await Task.Delay(1500);
        await s.SendAsync("LAS"u8.ToArray());
        await Task.Delay(1500);
        try
        {
            await s.SendAsync("S/1 STATUS\n"u8.ToArray());
        }
        catch (SocketException)
        {
            // Already closed: the answer below says why.
        }
        Assert.StartsWith("ERR bad-request No complete request arrived within 2 s", await ReadToClose(s));
        Assert.Equal(1, host.GetStatus().RequestTimeouts);
    }

    [Fact]
    public async Task ALegacyBindRefusedForAnOwnersIdIsCounted()
    {
        var host = StartController(TimeSpan.FromSeconds(5), allowPlaintext: true);
        var owner = await Connect(host);
        await owner.SendAsync("GLASS/1 BIND\n"u8.ToArray());
        var answer = new byte[128];
        var id = Encoding.ASCII.GetString(answer, 0, await owner.ReceiveAsync(answer)).Split(' ')[1];

        // The prototype's BIND for it: closed (its only answer), and counted as the refusal it is.
        var stranger = await Connect(host);
        await stranger.SendAsync((byte[])[.. "BIND"u8, .. Convert.FromHexString(id)]);
        Assert.Equal("", await ReadToClose(stranger));
        var status = host.GetStatus();
        Assert.Equal(1, status.Refused);
        Assert.Equal(1, status.RefusedByCode!.GetValueOrDefault(GlassErrors.Unauthorized));
        Assert.Equal(1, status.Bindings);
    }

    /// <summary>A TLS ClientHello record as this runtime's client sends it, caught by a listener that never answers.</summary>
    private static async Task<byte[]> CaptureClientHello()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var tls = new SslStream(client.GetStream());
        var handshake = tls.AuthenticateAsClientAsync("glass-router");
        using var server = await listener.AcceptTcpClientAsync();
        var stream = server.GetStream();
        var head = new byte[5];
        await stream.ReadExactlyAsync(head);
        var record = new byte[5 + (head[3] << 8 | head[4])];
        head.CopyTo(record, 0);
        await stream.ReadExactlyAsync(record.AsMemory(5));
        client.Close();
        await Assert.ThrowsAnyAsync<Exception>(() => handshake);
        return record;
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
}
