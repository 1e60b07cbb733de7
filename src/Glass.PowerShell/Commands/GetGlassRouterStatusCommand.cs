using System.Management.Automation;
using System.Net;
using System.Text.Json;
using Glass.Client;
using Glass.Controller;
using Glass.PowerShell.Jobs;
using Glass.Translator;

namespace Glass.PowerShell.Commands;

/// <summary>A router's figures in one object: the translator's over its control socket, the controller's over STATUS on loopback.</summary>
public sealed class GlassRouterStatus
{
    internal GlassRouterStatus(string controlSocket, SpliceCounters? t, IPEndPoint controller, ControllerStatus? c)
    {
        ControlSocket = controlSocket;
        Controller = controller;
        TranslatorState = t is null ? "Unavailable" : "Running";
        ControllerState = c is null ? "Unavailable" : "Running";
        Translator = t;
        ControllerCounters = c;
        if (t is not null)
        {
            Sessions = t.SessionsActive;
            SessionsPending = t.SessionsPending;
            SessionsOffloaded = t.SessionsOffloaded;
            SessionsByState = t.SessionsByState;
            PacketsRelayed = t.PacketsRelayed;
            BytesRelayed = t.BytesRelayed;
            Drops = t.Drops.Where(d => d.Value != 0).ToDictionary(d => d.Key, d => d.Value);
            DropsTotal = t.Drops.Values.Sum();
            OffloadFailures = t.OffloadFailures;
        }
        if (c is not null)
        {
            Bindings = c.Bindings;
            Channels = c.Channels;
            PortsInUse = c.PortsInUse;
            ClientSessions = c.Sessions;
            Connects = c.Connects;
            Refused = c.Refused;
            RefusedByCode = c.RefusedByCode ?? new Dictionary<string, long>();
            BadRequests = c.BadRequests;
            Fingerprint = c.Fingerprint;
        }
    }

    public string TranslatorState { get; }
    public string ControllerState { get; }
    public string ControlSocket { get; }
    public IPEndPoint Controller { get; }
    /// <summary>The fingerprint of the router's key, which clients pin (-RouterFingerprint).</summary>
    public string? Fingerprint { get; }

    // The translator's part; zero when it did not answer.
    public int Sessions { get; }
    public int SessionsPending { get; }
    public int SessionsOffloaded { get; }
    public IReadOnlyDictionary<string, int> SessionsByState { get; } = new Dictionary<string, int>();
    public long PacketsRelayed { get; }
    public long BytesRelayed { get; }
    /// <summary>Non-zero drop counters by reason.</summary>
    public IReadOnlyDictionary<string, long> Drops { get; } = new Dictionary<string, long>();
    public long DropsTotal { get; }
    public long OffloadFailures { get; }

    // The controller's part; zero when it did not answer.
    public int Bindings { get; }
    public int Channels { get; }
    public int PortsInUse { get; }
    /// <summary>Connectors' persistent sessions (GLASS/1 SESSION) open now.</summary>
    public int ClientSessions { get; }
    public long Connects { get; }
    public long Refused { get; }
    public IReadOnlyDictionary<string, long> RefusedByCode { get; } = new Dictionary<string, long>();
    public long BadRequests { get; }

    /// <summary>Everything the translator reported, as Get-GlassTranslatorStatus shows it.</summary>
    public SpliceCounters? Translator { get; }
    public ControllerStatus? ControllerCounters { get; }
}

/// <summary>
/// Shows a router's figures (sessions, offload, packets, drops, bindings, channels, ports,
/// connects, refusals) from the translator and the controller running on this host, whether in
/// this session or in another process such as a service. A part that does not answer is a
/// non-terminating error; the other part is still shown.
/// </summary>
[Cmdlet(VerbsCommon.Get, "GlassRouterStatus")]
[OutputType(typeof(GlassRouterStatus))]
public sealed class GetGlassRouterStatusCommand : GlassCmdlet
{
    /// <summary>The translator's control socket.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ControlSocket { get; set; } = TranslatorOptions.DefaultControlSocket;

    /// <summary>The controller's port on this host, as PORT or 127.0.0.1:PORT; by default this session's controller, else 7000.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ControllerPortCompleter))]
    public string? Controller { get; set; }

    /// <summary>Seconds to wait for the controller's answer.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = 5;

    protected override void EndProcessing()
    {
        SpliceCounters? translator = null;
        if (CommandSupport.QueryTranslator(this, ControlSocket, "STATUS", Cancelled) is { } json)
            translator = JsonSerializer.Deserialize<SpliceCounters>(json);

        var at = ControllerEndPoint();
        ControllerStatus? controller = null;
        try
        {
            WriteVerbose($"Asking the controller at {at} for its counters.");
            controller = WaitFor(ct => ControllerConnection.QueryStatusAsync(at, ct, TimeSpan.FromSeconds(TimeoutSec)),
                "Get-GlassRouterStatus", $"the controller at {at}", TimeoutSec);
        }
        catch (GlassException e)
        {
            WriteError(CommandSupport.ToErrorRecord(e, at));
        }
        if (translator is not null || controller is not null)
            WriteObject(new GlassRouterStatus(GetUnresolvedProviderPathFromPSPath(ControlSocket), translator, at, controller));
    }

    private IPEndPoint ControllerEndPoint()
    {
        if (Controller is { } text)
        {
            if (int.TryParse(text, out var port) && port is >= 1 and <= 65535)
                return new IPEndPoint(IPAddress.Loopback, port);
            try
            {
                return Wait(RouterEndpoint.ResolveAsync(text, Cancelled));
            }
            catch (GlassException e)
            {
                ThrowTerminatingError(new ErrorRecord(e, "InvalidControllerAddress", ErrorCategory.InvalidArgument, text));
            }
        }
        var mine = JobRepository.Jobs.OfType<GlassControllerJob>().FirstOrDefault(j => j.JobStateInfo.State == JobState.Running && j.EndPoint is not null);
        if (mine?.EndPoint is { } ep)
            return new IPEndPoint(ep.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : ep.Address, ep.Port);
        return new IPEndPoint(IPAddress.Loopback, RouterEndpoint.DefaultPort);
    }
}
