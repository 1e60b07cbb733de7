using System.Management.Automation;
using System.Runtime.InteropServices;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Starts a whole router from one YAML: the translator, then the controller. With -Wait it runs
/// in the foreground until Ctrl+C or SIGTERM (or until either part stops by itself), then stops
/// both and removes what they changed, so a service manager (systemd) can run it.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "GlassRouter", SupportsShouldProcess = true)]
[OutputType(typeof(GlassTranslatorJob), typeof(GlassControllerJob))]
public sealed class StartGlassRouterCommand : PSCmdlet
{
    private readonly ManualResetEventSlim _stop = new();

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string ConfigPath { get; set; } = "";

    /// <summary>Run in the foreground until Ctrl+C or SIGTERM, then stop and clean up.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void StopProcessing() => _stop.Set();

    protected override void EndProcessing()
    {
        var path = GetUnresolvedProviderPathFromPSPath(ConfigPath);
        CommandSupport.LoadConfig(this, path); // a bad file fails here, naming its line and key
        if (!ShouldProcess(path, "Start the glass translator and controller"))
            return;
        var started = InvokeCommand.InvokeScript(false,
            ScriptBlock.Create("param($c) Start-GlassTranslator -ConfigPath $c -ErrorAction Stop; Start-GlassController -ConfigPath $c -ErrorAction Stop"),
            null, path);
        var jobs = started.Select(o => o.BaseObject).OfType<GlassJob>().ToList();
        if (!Wait)
        {
            foreach (var j in jobs)
                WriteObject(j);
            return;
        }
        Serve(jobs);
    }

    private void Serve(List<GlassJob> jobs)
    {
        // SIGTERM (systemd's stop) and SIGINT end the wait instead of the process; the parts
        // are then stopped here, in order, and pwsh exits normally.
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        foreach (var j in jobs)
            j.StateChanged += OnStateChanged;
        WriteVerbose($"Glass router running: {string.Join(", ", jobs.Select(j => j.Name))}. Stop it with Ctrl+C or SIGTERM.");
        try
        {
            if (!jobs.Any(Ended))
                _stop.Wait();
        }
        finally
        {
            foreach (var j in jobs)
                j.StateChanged -= OnStateChanged;
            // The controller first, so no new link reaches a translator that is going away.
            foreach (var j in Enumerable.Reverse(jobs))
            {
                j.StopJob();
                JobRepository.Remove(j);
            }
        }
        foreach (var j in jobs.Where(j => j.JobStateInfo.State == JobState.Failed || j.Error.Count > 0))
        {
            foreach (var e in j.Error.ReadAll())
                WriteError(e);
        }
    }

    private static bool Ended(GlassJob j) => j.JobStateInfo.State is not (JobState.Running or JobState.NotStarted);

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Set();
    }

    private void OnStateChanged(object? sender, JobStateEventArgs e)
    {
        if (e.JobStateInfo.State is not (JobState.Running or JobState.NotStarted))
            _stop.Set();
    }
}
