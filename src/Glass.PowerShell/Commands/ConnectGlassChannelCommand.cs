using System.Management.Automation;
using System.Net;
using Glass.Client;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Connects to a channel. With -LocalPort, listens there and forwards every local connection,
/// each through its own router endpoint (a background job); with -Stdio, carries one connection
/// over this process's standard input and output (ssh -o ProxyCommand); with neither, returns
/// one router endpoint for one direct TCP connection by the application itself.
/// </summary>
[Cmdlet(VerbsCommunications.Connect, "GlassChannel", DefaultParameterSetName = EndpointSet)]
[OutputType(typeof(GlassChannelJob), ParameterSetName = new[] { ForwardSet })]
[OutputType(typeof(GlassEndpoint), ParameterSetName = new[] { EndpointSet })]
public sealed class ConnectGlassChannelCommand : GlassCmdlet
{
    private const string ForwardSet = "Forward";
    private const string EndpointSet = "Endpoint";
    private const string StdioSet = "Stdio";

    // Named ChannelId (alias Id, as the design writes it) so that a piped binding job binds its
    // ChannelId, not its job Id.
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    [ValidatePattern(CommandSupport.ChannelIdPattern, ErrorMessage = CommandSupport.ChannelIdMessage)]
    [ArgumentCompleter(typeof(ChannelIdCompleter))]
    public string ChannelId { get; set; } = "";

    [Parameter(Mandatory = true, ParameterSetName = ForwardSet)]
    [ValidateRange(0, 65535)]
    public int LocalPort { get; set; }

    [Parameter(ParameterSetName = ForwardSet)]
    [HostAddressTransformation]
    public IPAddress LocalAddress { get; set; } = IPAddress.Loopback;

    /// <summary>
    /// The controller, as HOST:PORT (port 7000 when omitted); by default $env:GLASS_ROUTER, else the
    /// router of Set-GlassClientConfig.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Router { get; set; }

    /// <summary>The channel's connect secret, where its binder set one; by default the client config's secret.</summary>
    [Parameter]
    [SecretTransformation]
    public System.Security.SecureString? Secret { get; set; }

    /// <summary>The router's connect token, where it requires one; by default the client config's token.</summary>
    [Parameter]
    [SecretTransformation]
    public System.Security.SecureString? Token { get; set; }

    [Parameter(ParameterSetName = ForwardSet)]
    public string? Name { get; set; }

    /// <summary>The fingerprint the router's key must have (sha256:...); by default the pin in the client config, else trust on first use.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? RouterFingerprint { get; set; }

    /// <summary>Speak plain GLASS/1, for a router that allows nothing else: unauthenticated, readable on the wire.</summary>
    [Parameter]
    public SwitchParameter Plaintext { get; set; }

    /// <summary>
    /// Carries one connection over standard input and output until the peer closes it, e.g.
    /// ssh -o ProxyCommand="pwsh -NoProfile -Command Connect-GlassChannel -Id ID -Stdio" user@host.
    /// Nothing else is written to standard output.
    /// </summary>
    [Parameter(Mandatory = true, ParameterSetName = StdioSet)]
    public SwitchParameter Stdio { get; set; }

    /// <summary>Seconds to wait for the router (and for a router endpoint) to answer, each time it is asked.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = (int)ControllerConnection.ReplyTimeout.TotalSeconds;

    /// <summary>With -LocalPort: forward in the foreground until Ctrl+C or SIGTERM, writing what happens; then stop.</summary>
    [Parameter(ParameterSetName = ForwardSet)]
    public SwitchParameter Wait { get; set; }

    // Per record: New-GlassBinding ... | Connect-GlassChannel -LocalPort 5555 binds the id by property name.
    protected override void ProcessRecord()
    {
        var settings = ClientDefaults.Resolve(this, Router, Secrets.Plain(Token), Secrets.Plain(Secret));
        try
        {
            var router = Wait(RouterEndpoint.ResolveAsync(settings.Router, Cancelled));
            var trust = settings.Trust(this, router, RouterFingerprint, Plaintext);
            var patience = TimeSpan.FromSeconds(TimeoutSec);
            var controller = $"the controller at {router}";
            if (ParameterSetName == StdioSet)
            {
                var target = WaitFor(ct => ControllerConnection.RequestEndpointAsync(router, ChannelId, settings.Secret, settings.Token, ct, patience, trust),
                    "Connect-GlassChannel", controller, TimeoutSec);
                settings.ReportFirstUse(this, toStandardError: true);
                // Only to the error stream: standard output carries the connection.
                using var input = Console.OpenStandardInput();
                using var output = Console.OpenStandardOutput();
                Wait(StreamBridge.RunAsync(target, input, output, Cancelled, patience));
                return;
            }
            if (ParameterSetName == EndpointSet)
            {
                WriteVerbose($"Asking {controller} for an endpoint of channel {ChannelId}.");
                var ep = WaitFor(ct => ControllerConnection.RequestEndpointAsync(router, ChannelId, settings.Secret, settings.Token, ct, patience, trust),
                    "Connect-GlassChannel", controller, TimeoutSec);
                settings.ReportFirstUse(this);
                WriteVerbose($"Dial {ep} within the router's pending timeout; it is linked to channel {ChannelId} for one connection.");
                WriteObject(new GlassEndpoint(ChannelId.ToLowerInvariant(), ep.Address, ep.Port));
                return;
            }
            WriteVerbose($"Checking with {controller} that channel {ChannelId} is bound, then listening on {LocalAddress}:{LocalPort}.");
            var forwarder = WaitFor(ct => GlassForwarder.StartAsync(router, ChannelId, new IPEndPoint(LocalAddress, LocalPort), settings.Secret, settings.Token, ct, patience, trust),
                "Connect-GlassChannel", controller, TimeoutSec);
            settings.ReportFirstUse(this);
            var job = new GlassChannelJob(forwarder, Secrets.JobCommand(MyInvocation), Name);
            job.MarkRunning();
            JobRepository.Add(job);
            WriteVerbose($"Forwarding {forwarder.LocalEndPoint} to channel {ChannelId} as job {job.Name}.");
            WriteObject(job);
            if (Wait)
                Serve([job]);
        }
        catch (GlassException e)
        {
            // An impersonated router (or a replaced key) stops everything: the user must decide.
            if (e.ErrorId == GlassErrors.RouterFingerprintMismatch)
                ThrowTerminatingError(CommandSupport.ToErrorRecord(e, ChannelId));
            // Non-terminating: -ErrorAction decides, as for any one item that failed.
            WriteError(CommandSupport.ToErrorRecord(CommandSupport.NameHolder(this, e, LocalPort), ChannelId));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            // -Stdio: the connection failed or was reset after it was made.
            WriteError(new ErrorRecord(e, "connection-failed", ErrorCategory.ConnectionError, ChannelId));
        }
    }
}
