using System.Management.Automation;
using System.Net;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>What Get-GlassBinding shows of one binding: a snapshot, so Get-Job keeps its own view of the job.</summary>
public sealed class GlassBindingInfo
{
    internal GlassBindingInfo(GlassBindingJob j)
    {
        JobId = j.Id;
        Name = j.Name;
        State = j.JobStateInfo.State;
        ChannelId = j.ChannelId;
        LocalTarget = j.LocalTarget;
        Router = j.Router;
        ControlState = j.ControlState;
        Reconnects = j.Reconnects;
        Connections = j.Connections;
        ActiveConnections = j.ActiveConnections;
        BytesToLocal = j.BytesToLocal;
        BytesFromLocal = j.BytesFromLocal;
        Failures = j.Failures;
    }

    public int JobId { get; }
    public string Name { get; }
    public JobState State { get; }
    public string ChannelId { get; }
    public IPEndPoint LocalTarget { get; }
    public IPEndPoint Router { get; }
    public string ControlState { get; }
    public long Reconnects { get; }
    public long Connections { get; }
    public long ActiveConnections { get; }
    public long BytesToLocal { get; }
    public long BytesFromLocal { get; }
    public long Failures { get; }
}

/// <summary>What Get-GlassChannel shows of one local port forwarded to a channel.</summary>
public sealed class GlassChannelInfo
{
    internal GlassChannelInfo(GlassChannelJob j)
    {
        JobId = j.Id;
        Name = j.Name;
        State = j.JobStateInfo.State;
        ChannelId = j.ChannelId;
        LocalEndPoint = j.LocalEndPoint;
        LocalPort = j.LocalPort;
        Router = j.Router;
        Connections = j.Connections;
        ActiveConnections = j.ActiveConnections;
        BytesSent = j.BytesSent;
        BytesReceived = j.BytesReceived;
        Failures = j.Failures;
    }

    public int JobId { get; }
    public string Name { get; }
    public JobState State { get; }
    public string ChannelId { get; }
    public IPEndPoint LocalEndPoint { get; }
    public int LocalPort { get; }
    public IPEndPoint Router { get; }
    public long Connections { get; }
    public long ActiveConnections { get; }
    public long BytesSent { get; }
    public long BytesReceived { get; }
    public long Failures { get; }
}

/// <summary>Finds this session's Glass jobs of one kind, by channel id.</summary>
internal static class GlassJobs
{
    public static IEnumerable<T> Of<T>(PSCmdlet cmdlet) where T : Job => cmdlet.JobRepository.Jobs.OfType<T>();

    /// <summary>Writes a non-terminating ObjectNotFound error for an id that matched nothing.</summary>
    public static void NotFound(PSCmdlet cmdlet, string what, string id, string lister) =>
        cmdlet.WriteError(new ErrorRecord(
            new ItemNotFoundException($"No {what} in this session has channel id {id}; {lister} lists them."),
            "GlassJobNotFound", ErrorCategory.ObjectNotFound, id));

    public static bool Matches(string channelId, string[]? wanted) =>
        wanted is null || wanted.Any(w => string.Equals(w, channelId, StringComparison.OrdinalIgnoreCase));
}

/// <summary>Lists this session's bindings (New-GlassBinding) with their channel ids and traffic.</summary>
[Cmdlet(VerbsCommon.Get, "GlassBinding")]
[OutputType(typeof(GlassBindingInfo))]
public sealed class GetGlassBindingCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-fA-F]{32}$")]
    public string[]? ChannelId { get; set; }

    protected override void ProcessRecord()
    {
        var jobs = GlassJobs.Of<GlassBindingJob>(this).ToList();
        foreach (var j in jobs.Where(j => GlassJobs.Matches(j.ChannelId, ChannelId)))
            WriteObject(new GlassBindingInfo(j));
        foreach (var id in ChannelId ?? [])
        {
            if (!jobs.Any(j => GlassJobs.Matches(j.ChannelId, [id])))
                GlassJobs.NotFound(this, "binding", id, "Get-GlassBinding");
        }
    }
}

/// <summary>Stops a binding: the router forgets its channel, and its job is removed.</summary>
[Cmdlet(VerbsCommon.Remove, "GlassBinding", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class RemoveGlassBindingCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-fA-F]{32}$")]
    public string[] ChannelId { get; set; } = [];

    protected override void ProcessRecord()
    {
        foreach (var id in ChannelId)
        {
            var jobs = GlassJobs.Of<GlassBindingJob>(this).Where(j => GlassJobs.Matches(j.ChannelId, [id])).ToList();
            if (jobs.Count == 0)
                GlassJobs.NotFound(this, "binding", id, "Get-GlassBinding");
            foreach (var j in jobs)
            {
                if (!ShouldProcess($"channel {j.ChannelId} (job {j.Id})", "Stop binding and remove its job"))
                    continue;
                j.StopJob();
                JobRepository.Remove(j);
                j.Dispose();
            }
        }
    }
}

/// <summary>Lists this session's forwarded local ports (Connect-GlassChannel -LocalPort).</summary>
[Cmdlet(VerbsCommon.Get, "GlassChannel")]
[OutputType(typeof(GlassChannelInfo))]
public sealed class GetGlassChannelCommand : PSCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-fA-F]{32}$")]
    public string[]? ChannelId { get; set; }

    protected override void ProcessRecord()
    {
        var jobs = GlassJobs.Of<GlassChannelJob>(this).ToList();
        foreach (var j in jobs.Where(j => GlassJobs.Matches(j.ChannelId, ChannelId)))
            WriteObject(new GlassChannelInfo(j));
        foreach (var id in ChannelId ?? [])
        {
            if (!jobs.Any(j => GlassJobs.Matches(j.ChannelId, [id])))
                GlassJobs.NotFound(this, "forwarded port", id, "Get-GlassChannel");
        }
    }
}

/// <summary>Stops forwarding a local port to a channel and removes its job; -LocalPort picks one of several.</summary>
[Cmdlet(VerbsCommunications.Disconnect, "GlassChannel", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class DisconnectGlassChannelCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern("^[0-9a-fA-F]{32}$")]
    public string ChannelId { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(1, 65535)]
    public int? LocalPort { get; set; }

    protected override void ProcessRecord()
    {
        var jobs = GlassJobs.Of<GlassChannelJob>(this)
            .Where(j => GlassJobs.Matches(j.ChannelId, [ChannelId]) && (LocalPort is null || j.LocalPort == LocalPort))
            .ToList();
        if (jobs.Count == 0)
            GlassJobs.NotFound(this, "forwarded port", LocalPort is null ? ChannelId : $"{ChannelId} on local port {LocalPort}", "Get-GlassChannel");
        foreach (var j in jobs)
        {
            if (!ShouldProcess($"local port {j.LocalPort} to channel {j.ChannelId} (job {j.Id})", "Stop forwarding and remove its job"))
                continue;
            j.StopJob();
            JobRepository.Remove(j);
            j.Dispose();
        }
    }
}
