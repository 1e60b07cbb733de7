using System.Management.Automation;
using System.Net;
using Glass.Config;

namespace Glass.PowerShell.Commands;

/// <summary>What Start-GlassTranslator and Start-GlassController share: a job name and where to serve metrics.</summary>
public abstract class GlassServiceCommand : PSCmdlet
{
    /// <summary>Serves Prometheus metrics at http://MetricsAddress:MetricsPort/metrics (also metrics.port in the config).</summary>
    [Parameter]
    [ValidateRange(1, 65535)]
    public int MetricsPort { get; set; }

    /// <summary>The address the metrics listen on; loopback unless given here or as metrics.address.</summary>
    [Parameter]
    [HostAddressTransformation]
    public IPAddress? MetricsAddress { get; set; }

    [Parameter]
    public string? Name { get; set; }

    /// <summary>
    /// Where to serve metrics: -MetricsPort/-MetricsAddress over the config's metrics section;
    /// null when neither names a port. The address defaults to loopback.
    /// </summary>
    private protected IPEndPoint? MetricsEndPoint(RouterConfig config)
    {
        var port = CommandSupport.Bound(this, nameof(MetricsPort)) ? MetricsPort : config.MetricsPort;
        if (port is not { } chosen)
            return null;
        var address = CommandSupport.Bound(this, nameof(MetricsAddress)) ? MetricsAddress : null;
        return new IPEndPoint(address ?? config.MetricsAddress ?? IPAddress.Loopback, chosen);
    }
}
