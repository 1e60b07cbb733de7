using System.Management.Automation;
using System.Net;
using Glass.Client;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Exposes a local TCP server on a fresh channel id. Returns once the router has assigned the id;
/// the binding keeps serving in the background until Stop-Job or Remove-Job.
/// </summary>
[Cmdlet(VerbsCommon.New, "GlassBinding")]
[OutputType(typeof(GlassBindingJob))]
public sealed class NewGlassBindingCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateRange(1, 65535)]
    public int LocalPort { get; set; }

    [Parameter]
    public IPAddress LocalAddress { get; set; } = IPAddress.Loopback;

    /// <summary>The controller, as HOST:PORT (port 7000 when omitted).</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string Router { get; set; } = "";

    [Parameter]
    public string? Name { get; set; }

    protected override void EndProcessing()
    {
        GlassBinding binding;
        try
        {
            var router = RouterEndpoint.ResolveAsync(Router).GetAwaiter().GetResult();
            binding = GlassBinding.StartAsync(router, new IPEndPoint(LocalAddress, LocalPort)).GetAwaiter().GetResult();
        }
        catch (GlassException e)
        {
            ThrowTerminatingError(CommandSupport.ToErrorRecord(e, Router));
            return;
        }
        var job = new GlassBindingJob(binding, MyInvocation.Line, Name);
        job.MarkRunning();
        JobRepository.Add(job);
        WriteObject(job);
    }
}
