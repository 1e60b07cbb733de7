using System.Net;
using System.Management.Automation;
using Glass.PowerShell.Jobs;
using Glass.Translator;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Starts the packet-level translator in this session: installs the NFQUEUE rule for the router's
/// port range (unless -SkipFirewall), binds the queue, and serves the control socket.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "GlassTranslator", SupportsShouldProcess = true)]
[OutputType(typeof(GlassTranslatorJob))]
public sealed class StartGlassTranslatorCommand : GlassServiceCommand
{
    [Parameter(Position = 0)]
    [ValidateRange(0, 65535)]
    public int Queue { get; set; } = 6;

    [Parameter]
    public string PortRange { get; set; } = Glass.PortRange.Default.ToString();

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ControlSocket { get; set; } = TranslatorOptions.DefaultControlSocket;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ConfigPath { get; set; }

    /// <summary>Seconds a link may wait for both SYNs.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int PendingTimeout { get; set; }

    /// <summary>Seconds an established session may stay silent.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int IdleTimeout { get; set; }

    /// <summary>Most sessions (pending or live) held at once: what bounds the translator's memory.</summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxSessions { get; set; }

    /// <summary>Kernel: established sessions are carried by conntrack NAT entries; None: every segment through this process.</summary>
    [Parameter]
    public OffloadMode Offload { get; set; } = OffloadMode.Kernel;

    /// <summary>On stop, leave offloaded sessions running in the kernel (with their rules) for the next translator to adopt.</summary>
    [Parameter]
    public SwitchParameter KeepSessions { get; set; }

    /// <summary>While no translator listens (crashed, restarting), the router's stack resets the relay range's packets instead of dropping them.</summary>
    [Parameter]
    public SwitchParameter FailOpen { get; set; }

    [Parameter]
    public SwitchParameter SkipFirewall { get; set; }


    protected override void EndProcessing()
    {
        var config = CommandSupport.LoadConfig(this, ConfigPath);
        var range = CommandSupport.Bound(this, nameof(PortRange)) || config.PortRange is null
            ? CommandSupport.ParseRange(this, PortRange)
            : config.PortRange.Value;
        var splice = new SpliceOptions();
        splice = splice with
        {
            PendingTimeout = CommandSupport.Bound(this, nameof(PendingTimeout)) ? TimeSpan.FromSeconds(PendingTimeout) : config.PendingTimeout ?? splice.PendingTimeout,
            IdleTimeout = CommandSupport.Bound(this, nameof(IdleTimeout)) ? TimeSpan.FromSeconds(IdleTimeout) : config.IdleTimeout ?? splice.IdleTimeout,
            TimeWait = config.TimeWait ?? splice.TimeWait,
            MaxSessions = CommandSupport.Bound(this, nameof(MaxSessions)) ? MaxSessions : config.MaxSessions ?? splice.MaxSessions,
        };
        var options = new TranslatorOptions
        {
            Queue = CommandSupport.Bound(this, nameof(Queue)) ? (ushort)Queue : config.Queue ?? (ushort)Queue,
            PortRange = range,
            ControlSocket = GetUnresolvedProviderPathFromPSPath(
                CommandSupport.Bound(this, nameof(ControlSocket)) ? ControlSocket : config.ControlSocket ?? ControlSocket),
            SkipFirewall = SkipFirewall,
            Splice = splice,
            Offload = CommandSupport.Bound(this, nameof(Offload)) ? Offload : config.Offload ?? Offload,
            KeepSessions = CommandSupport.Bound(this, nameof(KeepSessions)) ? KeepSessions.IsPresent : config.KeepSessions ?? false,
            FailOpen = CommandSupport.Bound(this, nameof(FailOpen)) ? FailOpen.IsPresent : config.FailOpen ?? false,
        };

        var rule = new Interop.NfQueueRule(options.Queue, range.First, range.Last);
        var action = options.SkipFirewall ? "Start translator (rule left to you)" : $"Add '{rule.Describe()}' and start translator";
        // Said under -WhatIf too: it is what to fix before starting.
        WarnIfEphemeralOverlap(range);
        if (!ShouldProcess($"NFQUEUE {options.Queue} for TCP ports {range}", action))
            return;

        var host = new TranslatorHost(options);
        try
        {
            host.Start();
        }
        catch (Exception e) when (e is Interop.KernelException or InvalidOperationException or IOException or System.Net.Sockets.SocketException or TimeoutException)
        {
            ThrowTerminatingError(CommandSupport.ToErrorRecord(e, options));
        }
        foreach (var warning in host.Warnings)
            WriteWarning(warning);
        var metrics = MetricsEndPoint(config);
        var job = new GlassTranslatorJob(host, Secrets.JobCommand(MyInvocation), Name);
        if (metrics is not null)
            job.ServeMetrics(() => Metrics.RouterMetrics.ForTranslator(metrics.Address, metrics.Port, () => host.Engine?.GetCounters()), metrics, this);
        job.MarkRunning();
        JobRepository.Add(job);
        WriteObject(job);
    }

    // The kernel picks local ports for outgoing connections from this range; such a port inside
    // the router's range would have its replies swallowed by the queue.
    private void WarnIfEphemeralOverlap(PortRange range)
    {
        try
        {
            var f = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 2 && int.TryParse(f[0], out var lo) && int.TryParse(f[1], out var hi) && lo <= range.Last && hi >= range.First)
                WriteWarning($"The kernel's ephemeral port range {lo}-{hi} overlaps the router's {range}: this host's own outgoing connections may be swallowed. Narrow it, e.g. sysctl -w net.ipv4.ip_local_port_range=\"32768 {range.First - 1}\".");
        }
        catch (IOException)
        {
        }
    }
}
