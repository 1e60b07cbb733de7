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

/// <summary>
/// What the cmdlets over this session's Glass jobs share: the jobs of one kind, picked by a key
/// (channel id, queue, port), and an ObjectNotFound error for a key that matched none.
/// </summary>
public abstract class GlassJobCommand<TJob> : PSCmdlet where TJob : GlassJob
{
    /// <summary>"binding", "forwarded port", "translator", for the error.</summary>
    private protected abstract string What { get; }

    /// <summary>What the key is: "channel id", "queue", for the error.</summary>
    private protected virtual string KeyName => "channel id";

    /// <summary>The cmdlet that lists them, for the error.</summary>
    private protected abstract string Lister { get; }

    private protected abstract string KeyOf(TJob job);

    /// <summary>The jobs with <paramref name="key"/> (any, when null) that <paramref name="also"/> accepts.</summary>
    private protected List<TJob> Find(string? key, Func<TJob, bool>? also = null) =>
        JobRepository.Jobs.OfType<TJob>()
            .Where(j => (key is null || string.Equals(KeyOf(j), key, StringComparison.OrdinalIgnoreCase)) && (also?.Invoke(j) ?? true))
            .ToList();

    private protected void NotFound(string what) =>
        WriteError(new ErrorRecord(
            new ItemNotFoundException($"No {What} in this session has {KeyName} {what}; {Lister} lists them."),
            "GlassJobNotFound", ErrorCategory.ObjectNotFound, what));

    /// <summary>Stops each job and removes it from the session, under -WhatIf/-Confirm.</summary>
    private protected void StopAndRemove(IEnumerable<TJob> jobs, Func<TJob, string> target, string action)
    {
        foreach (var j in jobs)
        {
            if (!ShouldProcess(target(j), action))
                continue;
            j.StopJob();
            JobRepository.Remove(j);
            j.Dispose();
        }
    }

    /// <summary>Writes every job with one of <paramref name="keys"/> (all, when null) as <paramref name="view"/> shows it.</summary>
    private protected void List(string[]? keys, Func<TJob, object> view)
    {
        foreach (var key in keys ?? [null!])
        {
            var found = Find(key);
            if (found.Count == 0 && key is not null)
                NotFound(key);
            foreach (var j in found)
                WriteObject(view(j));
        }
    }
}

/// <summary>Bindings (New-GlassBinding) of this session.</summary>
public abstract class GlassBindingCommand : GlassJobCommand<GlassBindingJob>
{
    private protected override string What => "binding";
    private protected override string Lister => "Get-GlassBinding";
    private protected override string KeyOf(GlassBindingJob job) => job.ChannelId;
}

/// <summary>Forwarded local ports (Connect-GlassChannel -LocalPort) of this session.</summary>
public abstract class GlassChannelCommand : GlassJobCommand<GlassChannelJob>
{
    private protected override string What => "forwarded port";
    private protected override string Lister => "Get-GlassChannel";
    private protected override string KeyOf(GlassChannelJob job) => job.ChannelId;
}

/// <summary>Lists this session's bindings (New-GlassBinding) with their channel ids and traffic.</summary>
[Cmdlet(VerbsCommon.Get, "GlassBinding")]
[OutputType(typeof(GlassBindingInfo))]
public sealed class GetGlassBindingCommand : GlassBindingCommand
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(CommandSupport.ChannelIdPattern, ErrorMessage = CommandSupport.ChannelIdMessage)]
    [ArgumentCompleter(typeof(ChannelIdCompleter))]
    public string[]? ChannelId { get; set; }

    protected override void ProcessRecord() => List(ChannelId, j => new GlassBindingInfo(j));
}

/// <summary>Stops a binding: the router forgets its channel, and its job is removed.</summary>
[Cmdlet(VerbsCommon.Remove, "GlassBinding", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class RemoveGlassBindingCommand : GlassBindingCommand
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(CommandSupport.ChannelIdPattern, ErrorMessage = CommandSupport.ChannelIdMessage)]
    [ArgumentCompleter(typeof(ChannelIdCompleter))]
    public string[] ChannelId { get; set; } = [];

    protected override void ProcessRecord()
    {
        foreach (var id in ChannelId)
        {
            var jobs = Find(id);
            if (jobs.Count == 0)
                NotFound(id);
            StopAndRemove(jobs, j => $"channel {j.ChannelId} (job {j.Id})", "Stop binding and remove its job");
        }
    }
}

/// <summary>Lists this session's forwarded local ports (Connect-GlassChannel -LocalPort).</summary>
[Cmdlet(VerbsCommon.Get, "GlassChannel")]
[OutputType(typeof(GlassChannelInfo))]
public sealed class GetGlassChannelCommand : GlassChannelCommand
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(CommandSupport.ChannelIdPattern, ErrorMessage = CommandSupport.ChannelIdMessage)]
    [ArgumentCompleter(typeof(ChannelIdCompleter))]
    public string[]? ChannelId { get; set; }

    protected override void ProcessRecord() => List(ChannelId, j => new GlassChannelInfo(j));
}

/// <summary>Stops forwarding a local port to a channel and removes its job; -LocalPort picks one of several.</summary>
[Cmdlet(VerbsCommunications.Disconnect, "GlassChannel", SupportsShouldProcess = true)]
[OutputType(typeof(void))]
public sealed class DisconnectGlassChannelCommand : GlassChannelCommand
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidatePattern(CommandSupport.ChannelIdPattern, ErrorMessage = CommandSupport.ChannelIdMessage)]
    [ArgumentCompleter(typeof(ChannelIdCompleter))]
    public string ChannelId { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(1, 65535)]
    public int? LocalPort { get; set; }

    protected override void ProcessRecord()
    {
        var jobs = Find(ChannelId, j => LocalPort is null || j.LocalPort == LocalPort);
        if (jobs.Count == 0)
            NotFound(LocalPort is null ? ChannelId : $"{ChannelId} on local port {LocalPort}");
        StopAndRemove(jobs, j => $"local port {j.LocalPort} to channel {j.ChannelId} (job {j.Id})", "Stop forwarding and remove its job");
    }
}
