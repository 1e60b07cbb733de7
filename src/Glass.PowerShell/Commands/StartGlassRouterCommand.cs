using System.Management.Automation;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Starts a whole router from one YAML: the translator, then the controller. With -Wait it runs
/// in the foreground until Ctrl+C or SIGTERM (or until either part stops by itself), then stops
/// both and removes what they changed, so a service manager (systemd) can run it.
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "GlassRouter", SupportsShouldProcess = true)]
[OutputType(typeof(GlassTranslatorJob), typeof(GlassControllerJob))]
public sealed class StartGlassRouterCommand : GlassCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string ConfigPath { get; set; } = "";

    /// <summary>Run in the foreground until Ctrl+C or SIGTERM, then stop and clean up.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void EndProcessing()
    {
        var path = GetUnresolvedProviderPathFromPSPath(ConfigPath);
        CommandSupport.LoadConfig(this, path); // a bad file fails here, naming its line and key
        if (!ShouldProcess(path, "Start the glass translator and controller"))
            return;
        var jobs = Start("Start-GlassTranslator", path);
        try
        {
            jobs.AddRange(Start("Start-GlassController", path));
        }
        catch
        {
            // Half a router is no router: the translator goes with the controller's failure.
            foreach (var j in jobs)
            {
                j.StopJob();
                JobRepository.Remove(j);
            }
            throw;
        }
        if (!Wait)
        {
            foreach (var j in jobs)
                WriteObject(j);
            return;
        }
        Serve(jobs);
    }

    private List<GlassJob> Start(string cmdlet, string configPath) =>
        InvokeCommand.InvokeScript(false, ScriptBlock.Create($"param($c) {cmdlet} -ConfigPath $c -ErrorAction Stop"), null, configPath)
            .Select(o => o.BaseObject).OfType<GlassJob>().ToList();
}
