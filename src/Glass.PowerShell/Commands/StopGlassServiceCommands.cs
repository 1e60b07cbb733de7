using System.Management.Automation;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// What Stop-GlassTranslator and Stop-GlassController share: stop this session's services of one
/// kind by their key (all running ones when none is named), under -WhatIf/-Confirm. The job stays
/// in the session, Stopped, so Receive-Job still shows its log; Remove-Job drops it.
/// </summary>
public abstract class StopGlassServiceCommand<TJob> : GlassJobCommand<TJob> where TJob : GlassJob
{
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private protected void Stop(IEnumerable<string>? keys, string action)
    {
        if (keys is null)
        {
            var running = Find(null, j => j.JobStateInfo.State == JobState.Running);
            if (running.Count == 0)
                WriteError(new ErrorRecord(
                    new ItemNotFoundException($"No {What} runs in this session; {Lister} lists them."),
                    "GlassJobNotFound", ErrorCategory.ObjectNotFound, null));
            StopEach(running, action);
            return;
        }
        foreach (var key in keys)
        {
            var found = Find(key);
            if (found.Count == 0)
                NotFound(key);
            StopEach(found, action);
        }
    }

    private void StopEach(List<TJob> jobs, string action)
    {
        foreach (var j in jobs)
        {
            if (!ShouldProcess($"{j.Name} (job {j.Id})", action))
                continue;
            j.StopJob();
            if (PassThru)
                WriteObject(j);
        }
    }
}

/// <summary>Stops a translator of this session: its iptables rules and control socket are removed.</summary>
[Cmdlet(VerbsLifecycle.Stop, "GlassTranslator", SupportsShouldProcess = true)]
[OutputType(typeof(GlassTranslatorJob))]
public sealed class StopGlassTranslatorCommand : StopGlassServiceCommand<GlassTranslatorJob>
{
    /// <summary>The queue numbers of the translators to stop; all running ones when omitted.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 65535)]
    [ArgumentCompleter(typeof(QueueCompleter))]
    public int[]? Queue { get; set; }

    private protected override string What => "translator";
    private protected override string KeyName => "queue";
    private protected override string Lister => "Get-Job -Name GlassTranslator*";
    private protected override string KeyOf(GlassTranslatorJob job) => job.Queue.ToString(System.Globalization.CultureInfo.InvariantCulture);

    protected override void ProcessRecord() =>
        Stop(Queue?.Select(q => q.ToString(System.Globalization.CultureInfo.InvariantCulture)), "Stop the translator and remove its rules");
}

/// <summary>Stops a controller of this session: it stops listening and its bindings' control connections close.</summary>
[Cmdlet(VerbsLifecycle.Stop, "GlassController", SupportsShouldProcess = true)]
[OutputType(typeof(GlassControllerJob))]
public sealed class StopGlassControllerCommand : StopGlassServiceCommand<GlassControllerJob>
{
    /// <summary>The ports of the controllers to stop; all running ones when omitted.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateRange(1, 65535)]
    [ArgumentCompleter(typeof(ControllerPortCompleter))]
    public int[]? Port { get; set; }

    private protected override string What => "controller";
    private protected override string KeyName => "port";
    private protected override string Lister => "Get-Job -Name GlassController*";
    private protected override string KeyOf(GlassControllerJob job) =>
        job.EndPoint?.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "";

    protected override void ProcessRecord() =>
        Stop(Port?.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture)), "Stop the controller");
}
