using System.Net;
using System.Runtime.InteropServices;
using Glass.Client;
using Glass.Controller;
using Glass.Translator;

namespace Glass.PowerShell.Jobs;

/// <summary>A running translator (Start-GlassTranslator).</summary>
public sealed class GlassTranslatorJob : GlassJob
{
    private readonly TranslatorHost _host;
    private readonly EventHandler _onExit;
    private readonly PosixSignalRegistration[] _signals;

    internal GlassTranslatorJob(TranslatorHost host, string command, string? name)
        : base(command, name ?? $"GlassTranslator-{host.Options.Queue}", "GlassTranslator")
    {
        _host = host;
        // pwsh ending must still remove the iptables rule and the socket file: on exit, and on
        // SIGTERM/SIGHUP, which end pwsh without raising ProcessExit. The handlers run before
        // the signal's default action, which still ends the process.
        _onExit = (_, _) => _host.Stop();
        AppDomain.CurrentDomain.ProcessExit += _onExit;
        _signals = new[]
        {
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => _host.Stop()),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, _ => _host.Stop()),
        };
        if (host.Engine is { } engine)
        {
            // Raised under the engine's lock: a record is all they do.
            engine.Paired += OnPaired;
            engine.Released += OnReleased;
        }
        FollowCompletion(host.Completion);
    }

    private void OnPaired(LinkRelease r) =>
        Report($"Session {r.SessionId} paired: {Describe(r)}.", false, "Paired");

    private void OnReleased(LinkRelease r) =>
        Report($"Session {r.SessionId} ended ({r.Reason}): {Describe(r)}.", false, "Ended");

    private static string Describe(LinkRelease r) =>
        $"{Glass.Packets.Ipv4.Format(r.PeerA)} on router port {r.RouterPortA} with {Glass.Packets.Ipv4.Format(r.PeerB)} on router port {r.RouterPortB}";

    public ushort Queue => _host.Options.Queue;
    public string PortRange => _host.Options.PortRange.ToString();
    public string ControlSocket => _host.Options.ControlSocket;
    public SpliceCounters? Counters => _host.Engine?.GetCounters();
    public long PacketsRelayed => Counters?.PacketsRelayed ?? 0;
    public int Sessions => Counters is { } c ? c.SessionsActive + c.SessionsPending : 0;
    /// <summary>Packets whose handling threw (a bug: each was dropped, the translator went on).</summary>
    public long InternalErrors => _host.InternalErrors;
    public Exception? LastInternalError => _host.LastInternalError;
    /// <summary>Datagrams the kernel refused to send (also counted as SendFailed drops).</summary>
    public long RawSendErrors => _host.RawSendErrors;
    /// <summary>How relayed packets go back to the kernel: the tun device, or the raw socket and why.</summary>
    public string SendPath => _host.SendPath;

    protected override void StopService()
    {
        if (_host.Engine is { } engine)
        {
            engine.Paired -= OnPaired;
            engine.Released -= OnReleased;
        }
        AppDomain.CurrentDomain.ProcessExit -= _onExit;
        foreach (var r in _signals)
            r.Dispose();
        _host.Stop();
    }
}

/// <summary>A running controller (Start-GlassController).</summary>
public sealed class GlassControllerJob : GlassJob
{
    private readonly ControllerHost _host;

    internal GlassControllerJob(ControllerHost host, string command, string? name)
        : base(command, name ?? $"GlassController-{host.LocalEndPoint?.Port}", "GlassController")
    {
        _host = host;
        EndPoint = host.LocalEndPoint;
        _host.Problem += m => Report(m, warning: true);
    }

    /// <summary>Where it listens; kept after it stopped.</summary>
    public IPEndPoint? EndPoint { get; }
    public string ControlSocket => _host.Options.ControlSocket;
    public string PortRange => _host.Options.PortRange.ToString();
    /// <summary>The fingerprint of the router's key: what clients pin (-RouterFingerprint).</summary>
    public string Fingerprint => _host.Fingerprint;
    /// <summary>The PEM file the key is kept in, or null for a key made for this run only.</summary>
    public string? CertificatePath => _host.Identity.Path;
    /// <summary>Whether plain GLASS/1 and the binary BIND/CONN are served besides TLS (unauthenticated).</summary>
    public bool AllowPlaintext => _host.Options.AllowPlaintext;
    public ControllerStatus Status => _host.GetStatus();
    public int Bindings => Status.Bindings;
    public int PortsInUse => Status.PortsInUse;

    protected override void StopService()
    {
        _host.Stop();
        _host.Identity.Dispose();
    }
}

/// <summary>A local server exposed on a channel (New-GlassBinding).</summary>
public sealed class GlassBindingJob : GlassJob
{
    private readonly GlassBinding _binding;

    internal GlassBindingJob(GlassBinding binding, string command, string? name)
        : base(command, name ?? $"GlassBinding-{binding.ChannelId[..8]}", "GlassBinding")
    {
        _binding = binding;
        _binding.Message += (m, w) => Report(m, w);
        FollowCompletion(binding.Completion);
    }

    public string ChannelId => _binding.ChannelId;
    /// <summary>Connected, or Reconnecting while the control connection is being restored.</summary>
    public string ControlState => _binding.ControlState;
    public long Reconnects => _binding.Reconnects;
    public IPEndPoint Router => _binding.Router;
    public IPEndPoint LocalTarget => _binding.LocalTarget;
    public long Connections => _binding.Connections;
    public long ActiveConnections => _binding.ActiveConnections;
    public long BytesToLocal => _binding.BytesToLocal;
    public long BytesFromLocal => _binding.BytesFromLocal;
    public long Failures => _binding.Failures;

    protected override void StopService() => _binding.Stop();
}

/// <summary>A local port forwarded to a channel (Connect-GlassChannel -LocalPort).</summary>
public sealed class GlassChannelJob : GlassJob
{
    private readonly GlassForwarder _forwarder;

    internal GlassChannelJob(GlassForwarder forwarder, string command, string? name)
        : base(command, name ?? $"GlassChannel-{forwarder.ChannelId[..8]}", "GlassChannel")
    {
        _forwarder = forwarder;
        _forwarder.Message += (m, w) => Report(m, w);
        _forwarder.ConnectionFailed += ReportError;
        FollowCompletion(forwarder.Completion);
    }

    public string ChannelId => _forwarder.ChannelId;
    public IPEndPoint Router => _forwarder.Router;
    public IPEndPoint LocalEndPoint => _forwarder.LocalEndPoint;
    public int LocalPort => _forwarder.LocalEndPoint.Port;
    public long Connections => _forwarder.Connections;
    public long ActiveConnections => _forwarder.ActiveConnections;
    public long BytesSent => _forwarder.BytesSent;
    public long BytesReceived => _forwarder.BytesReceived;
    public long Failures => _forwarder.Failures;

    protected override void StopService() => _forwarder.Stop();
}

/// <summary>One router endpoint for one direct connection to a channel (Connect-GlassChannel without -LocalPort).</summary>
public sealed record GlassEndpoint(string ChannelId, IPAddress Address, int Port)
{
    public override string ToString() => $"{Address}:{Port}";
}
