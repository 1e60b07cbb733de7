using System.Management.Automation;
using System.Net;
using Glass.Controller;
using Glass.PowerShell.Jobs;
using Glass.Translator;

namespace Glass.PowerShell.Commands;

/// <summary>Starts the rendezvous service that binders and connectors talk to.</summary>
[Cmdlet(VerbsLifecycle.Start, "GlassController")]
[OutputType(typeof(GlassControllerJob))]
public sealed class StartGlassControllerCommand : GlassServiceCommand
{
    [Parameter(Position = 0)]
    [ValidateRange(0, 65535)]
    public int Port { get; set; } = 7000;

    [Parameter]
    [HostAddressTransformation]
    public IPAddress Address { get; set; } = IPAddress.Any;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ControlSocket { get; set; } = TranslatorOptions.DefaultControlSocket;

    [Parameter]
    public string PortRange { get; set; } = Glass.PortRange.Default.ToString();

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ConfigPath { get; set; }

    /// <summary>Seconds a channel stays reserved after its binder's connection dropped.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int LeaseTime { get; set; }

    /// <summary>The durable channel registry's file, or "memory" for none.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? RegistryPath { get; set; }

    protected override void EndProcessing()
    {
        var config = CommandSupport.LoadConfig(this, ConfigPath);
        var options = new ControllerOptions
        {
            Port = CommandSupport.Bound(this, nameof(Port)) ? Port : config.ControllerPort ?? Port,
            Address = CommandSupport.Bound(this, nameof(Address)) ? Address : config.ControllerAddress ?? Address,
            ControlSocket = GetUnresolvedProviderPathFromPSPath(
                CommandSupport.Bound(this, nameof(ControlSocket)) ? ControlSocket : config.ControlSocket ?? ControlSocket),
            PortRange = CommandSupport.Bound(this, nameof(PortRange)) || config.PortRange is null
                ? CommandSupport.ParseRange(this, PortRange)
                : config.PortRange.Value,
            BindToken = config.BindToken,
            ConnectToken = config.ConnectToken,
        };
        var defaults = new ControllerOptions();
        options = options with
        {
            LeaseTime = CommandSupport.Bound(this, nameof(LeaseTime)) ? TimeSpan.FromSeconds(LeaseTime) : config.LeaseTime ?? defaults.LeaseTime,
            MaxBindingsPerAddress = config.MaxBindingsPerAddress ?? defaults.MaxBindingsPerAddress,
            MaxLinksPerAddress = config.MaxLinksPerAddress ?? defaults.MaxLinksPerAddress,
            MaxConnectionsPerAddress = config.MaxConnectionsPerAddress ?? defaults.MaxConnectionsPerAddress,
            ConnectRatePerAddress = config.ConnectRatePerAddress ?? defaults.ConnectRatePerAddress,
        };
        var registry = CommandSupport.Bound(this, nameof(RegistryPath)) ? RegistryPath : config.Registry;
        options = options with
        {
            RegistryPath = registry is null ? ControllerOptions.DefaultRegistryPath(options.Port)
                : registry.Equals("memory", StringComparison.OrdinalIgnoreCase) ? null
                : GetUnresolvedProviderPathFromPSPath(registry),
        };
        var certificate = config.TlsCertificate is { } named ? GetUnresolvedProviderPathFromPSPath(named) : RouterIdentity.DefaultPath(options.Port);
        RouterIdentity identity;
        try
        {
            identity = certificate is null
                ? RouterIdentity.Ephemeral()
                : RouterIdentity.LoadOrCreate(certificate, config.TlsKey is { } key ? GetUnresolvedProviderPathFromPSPath(key) : null, WriteWarning);
        }
        catch (GlassException e)
        {
            ThrowTerminatingError(CommandSupport.ToErrorRecord(e, certificate));
            return;
        }
        WriteVerbose(identity.Path is null
            ? $"The router's key is made for this run only (port 0): fingerprint {identity.Fingerprint}."
            : $"The router's key {(identity.Created ? "was generated in" : "comes from")} {identity.Path}: fingerprint {identity.Fingerprint}.");
        options = options with { Identity = identity, AllowPlaintext = config.AllowPlaintext ?? false };
        if (options.AllowPlaintext)
            WriteWarning("tls.allowPlaintext is true: plain GLASS/1 and the binary BIND/CONN are served too. They are unauthenticated: anyone on the path reads their tokens, secrets and channel ids.");
        var host = new ControllerHost(options);
        try
        {
            host.Start();
        }
        catch (GlassException e)
        {
            identity.Dispose();
            // A key made for a controller that never served (its port was taken, say) goes again:
            // a failed start leaves nothing behind.
            if (identity.Created && identity.Path is { } made)
                File.Delete(made);
            ThrowTerminatingError(CommandSupport.ToErrorRecord(CommandSupport.NameHolder(this, e, options.Port), options));
        }
        foreach (var warning in host.StartWarnings)
            WriteWarning(warning);
        if (host.RegistryFile is { } file)
            WriteVerbose($"Channels are kept in {file}; {host.Restored} came back from the last run.");
        var metrics = MetricsEndPoint(config);
        var job = new GlassControllerJob(host, Secrets.JobCommand(MyInvocation), Name);
        if (metrics is not null)
            job.ServeMetrics(() => Metrics.RouterMetrics.ForController(metrics.Address, metrics.Port, host.GetStatus), metrics, this);
        job.MarkRunning();
        JobRepository.Add(job);
        WriteObject(job);
    }
}
