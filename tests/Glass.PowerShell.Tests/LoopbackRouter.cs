using System.Management.Automation;
using System.Management.Automation.Runspaces;
using Glass.PowerShell.Jobs;
using Glass.Translator;

namespace Glass.PowerShell.Tests;

/// <summary>
/// A router on loopback without root: the translator's control socket is served in this process
/// over a splice engine whose packets go nowhere (so links are made and listed, nothing is
/// relayed), and the controller is started with Start-GlassController in its own runspace, where
/// the tests' bindings and forwarded ports live as jobs. Listeners on the router ports stand in
/// for the splice, so a binder's dial is answered (by the kernel's handshake) and its link stays
/// pending rather than being cancelled as refused.
/// </summary>
public sealed class LoopbackRouter : IDisposable
{
    public const string PortRange = "61500-61599";

    private readonly SpliceEngine _engine = new(new Nowhere());
    private readonly ControlServer _translator;

    private readonly List<System.Net.Sockets.TcpListener> _standIns = new();

    public LoopbackRouter(HostedModule module)
    {
        for (var port = 61500; port <= 61599; port++)
        {
            var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            l.Start();
            _standIns.Add(l);
        }
        ControlSocket = Path.Combine(module.NewFolder(), "translator.sock");
        _translator = new ControlServer(_engine, ControlSocket);
        _translator.Start();
        Runspace = module.NewRunspace();
        var started = Hosted.Command(Runspace, "Start-GlassController", new Dictionary<string, object?>
        {
            ["Port"] = 0,
            ["Address"] = "127.0.0.1",
            ["ControlSocket"] = ControlSocket,
            ["PortRange"] = PortRange,
        }).Succeeded();
        Controller = Assert.IsType<GlassControllerJob>(Assert.Single(started.Objects));
        Address = $"127.0.0.1:{Controller.EndPoint!.Port}";
    }

    /// <summary>The runspace whose jobs are this router's controller and the tests' bindings.</summary>
    public Runspace Runspace { get; }

    public GlassControllerJob Controller { get; }

    /// <summary>-Router for the client cmdlets.</summary>
    public string Address { get; }

    public string ControlSocket { get; }

    public SpliceEngine Engine => _engine;

    public void Dispose()
    {
        Hosted.Invoke(Runspace, ps => ps.AddScript("Get-Job | Remove-Job -Force"));
        Runspace.Dispose();
        _translator.Dispose();
        _standIns.ForEach(l => l.Stop());
    }

    private sealed class Nowhere : IPacketSender
    {
        public bool Send(ReadOnlySpan<byte> packet, uint destination) => true;
    }
}
