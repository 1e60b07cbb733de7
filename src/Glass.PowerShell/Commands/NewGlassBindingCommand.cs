using System.Management.Automation;
using System.Net;
using Glass.Client;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Exposes a local TCP server on a channel id. Returns once the router has assigned the id; the
/// binding keeps serving in the background (reconnecting when its control connection drops)
/// until Remove-GlassBinding, or in the foreground with -Wait until Ctrl+C or SIGTERM. The id's
/// secret is remembered, so -ChannelId gets it back later.
/// </summary>
[Cmdlet(VerbsCommon.New, "GlassBinding")]
[OutputType(typeof(GlassBindingJob))]
public sealed class NewGlassBindingCommand : GlassCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateRange(1, 65535)]
    public int LocalPort { get; set; }

    [Parameter]
    [HostAddressTransformation]
    public IPAddress LocalAddress { get; set; } = IPAddress.Loopback;

    /// <summary>
    /// The controller, as HOST:PORT (port 7000 when omitted); by default $env:GLASS_ROUTER, else the
    /// router of Set-GlassClientConfig.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Router { get; set; }

    /// <summary>A channel id this user bound before (its secret is remembered), or a new id to claim.</summary>
    [Parameter]
    [ValidatePattern(CommandSupport.ChannelIdPattern, ErrorMessage = CommandSupport.ChannelIdMessage)]
    [ArgumentCompleter(typeof(ChannelIdCompleter))]
    public string? ChannelId { get; set; }

    /// <summary>A secret connectors must present (Connect-GlassChannel -Secret); by default the client config's secret.</summary>
    [Parameter]
    [SecretTransformation]
    public System.Security.SecureString? ConnectSecret { get; set; }

    /// <summary>The router's bind token, where it requires one; by default the client config's token.</summary>
    [Parameter]
    [SecretTransformation]
    public System.Security.SecureString? Token { get; set; }

    [Parameter]
    public string? Name { get; set; }

    /// <summary>The fingerprint the router's key must have (sha256:...); by default the pin in the client config, else trust on first use.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? RouterFingerprint { get; set; }

    /// <summary>Speak plain GLASS/1, for a router that allows nothing else: unauthenticated, readable on the wire.</summary>
    [Parameter]
    public SwitchParameter Plaintext { get; set; }

    /// <summary>Seconds to wait for the router to answer, each time it is asked.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = (int)ControllerConnection.ReplyTimeout.TotalSeconds;

    /// <summary>Serve in the foreground until Ctrl+C or SIGTERM, writing what happens; then unbind.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void EndProcessing()
    {
        var settings = ClientDefaults.Resolve(this, Router, Secrets.Plain(Token), Secrets.Plain(ConnectSecret));
        var store = new ChannelStore();
        GlassBinding? binding = null;
        try
        {
            var router = Wait(RouterEndpoint.ResolveAsync(settings.Router, Cancelled));
            var trust = settings.Trust(this, router, RouterFingerprint, Plaintext);
            var id = ChannelId?.ToLowerInvariant();
            // A remembered secret reclaims the id; an id never bound here is claimed with a new one.
            var remembered = id is null ? null : store.Load(id);
            if (id is not null)
                WriteVerbose(remembered is null ? $"Channel {id} was not bound here before: claiming it with a new secret." : $"Reclaiming channel {id} with its secret from {store.Directory}.");
            var secret = id is null ? null : remembered ?? Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
            var patience = TimeSpan.FromSeconds(TimeoutSec);
            var options = new BindingOptions { ChannelId = id, Secret = secret, ConnectSecret = settings.Secret, Token = settings.Token, Patience = patience, Trust = trust };
            WriteVerbose($"Binding {LocalAddress}:{LocalPort} at the controller {router}.");
            binding = WaitFor(ct => GlassBinding.StartAsync(router, new IPEndPoint(LocalAddress, LocalPort), options, ct),
                "New-GlassBinding", $"the controller at {router}", TimeoutSec);
            settings.ReportFirstUse(this);
            store.Save(binding.ChannelId, binding.Secret);
            WriteVerbose($"Bound channel {binding.ChannelId}; its secret is kept in {store.Directory}.");
        }
        catch (GlassException e)
        {
            // An impersonated router (or a replaced key) stops everything: the user must decide.
            if (e.ErrorId == GlassErrors.RouterFingerprintMismatch)
                ThrowTerminatingError(CommandSupport.ToErrorRecord(e, settings.Router));
            // Non-terminating: -ErrorAction decides, as for any one item that failed.
            WriteError(CommandSupport.ToErrorRecord(e, settings.Router));
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A binding whose secret is not kept would serve outside any job, with nothing to stop it.
            binding?.Stop();
            ThrowTerminatingError(new ErrorRecord(
                new IOException($"The channel's secret could not be saved under {store.Directory}: {e.Message}", e),
                "ChannelSecretNotSaved", ErrorCategory.WriteError, store.Directory));
            return;
        }
        var job = new GlassBindingJob(binding, Secrets.JobCommand(MyInvocation), Name);
        job.MarkRunning();
        JobRepository.Add(job);
        WriteObject(job);
        if (Wait)
            Serve([job]);
    }
}
