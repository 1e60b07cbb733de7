using System.Management.Automation;

namespace Glass.PowerShell.Jobs;

/// <summary>
/// The base of every long-lived Glass service started in a session. Registered with the job
/// manager, so Get-Job, Receive-Job, Stop-Job and Remove-Job work on it. What happens goes to the
/// job's information stream (timestamped records tagged "Glass" and the job's type), problems to
/// its warning stream, a fatal error to its error stream, and the job fails. Each stream keeps the
/// newest <see cref="StreamLimit"/> records that Receive-Job has not taken yet.
/// </summary>
public abstract class GlassJob : Job2
{
    /// <summary>Records a stream keeps: a job that runs for months must not grow with every connection.</summary>
    public const int StreamLimit = 1000;

    private int _finished;
    private long _dropped;
    private Glass.Metrics.RouterMetrics? _metrics;

    protected GlassJob(string command, string? name, string typeName)
        : base(command, name)
    {
        PSJobTypeName = typeName;
    }

    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Warning.Count > 0 || Verbose.Count > 0 || Information.Count > 0;

    public override string Location => "localhost";

    public override string StatusMessage => JobStateInfo.State.ToString();

    internal void MarkRunning() => SetJobState(JobState.Running);

    /// <summary>Where Prometheus scrapes this service's metrics (http://.../metrics), if anywhere.</summary>
    public System.Net.IPEndPoint? MetricsEndPoint { get; private set; }

    /// <summary>Starts serving metrics; a port that cannot be served stops the job and the cmdlet.</summary>
    internal void ServeMetrics(Func<Glass.Metrics.RouterMetrics> start, System.Net.IPEndPoint at, PSCmdlet cmdlet)
    {
        try
        {
            _metrics = start();
            MetricsEndPoint = at;
        }
        catch (GlassException e)
        {
            StopJob();
            cmdlet.ThrowTerminatingError(Commands.CommandSupport.ToErrorRecord(e, at));
        }
    }

    /// <summary>Records dropped, oldest first, from streams that were full.</summary>
    public long DroppedRecords => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Reports a message from a background thread: warnings to Warning, the rest to Information,
    /// timestamped and tagged "Glass", the job's type and <paramref name="tag"/>.
    /// </summary>
    internal void Report(string message, bool warning, string? tag = null)
    {
        if (warning)
        {
            Keep(Warning, new WarningRecord(message));
            return;
        }
        var record = new InformationRecord(message, Name);
        record.Tags.Add("Glass");
        record.Tags.Add(PSJobTypeName);
        if (tag is not null)
            record.Tags.Add(tag);
        Keep(Information, record);
    }

    /// <summary>Reports a failure that the service survived (one connection, say) to the job's Error stream.</summary>
    internal void ReportError(Exception error) => Keep(Error, ToErrorRecord(error));

    // A cmdlet's categories (a refused rebind is PermissionDenied, not a connection error); what
    // is not Glass's own is a connection's failure.
    private ErrorRecord ToErrorRecord(Exception error)
    {
        var record = Commands.CommandSupport.ToErrorRecord(error, this);
        return record.CategoryInfo.Category == ErrorCategory.NotSpecified
            ? new ErrorRecord(error, record.FullyQualifiedErrorId, ErrorCategory.ConnectionError, this)
            : record;
    }

    private void Keep<T>(PSDataCollection<T> stream, T record)
    {
        stream.Add(record);
        while (stream.Count > StreamLimit)
        {
            try
            {
                stream.RemoveAt(0);
                Interlocked.Increment(ref _dropped);
            }
            catch (ArgumentOutOfRangeException)
            {
                break; // Receive-Job took them meanwhile
            }
        }
    }

    /// <summary>Ends the job after its service stopped by itself (e.g. lost its connection).</summary>
    internal void Finish(Exception? error)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
            return;
        if (error is not null)
            Error.Add(ToErrorRecord(error));
        // What the service holds goes as at a stop (a translator's firewall rules, a binding's
        // relays still running): Stop-Job cannot do it later, as the job has ended.
        try
        {
            StopService();
        }
        catch (Exception e)
        {
            Error.Add(new ErrorRecord(e, "StopFailed", ErrorCategory.CloseError, this));
        }
        _metrics?.Dispose();
        SetJobState(error is null ? JobState.Completed : JobState.Failed);
    }

    /// <summary>Stops the underlying service, or cleans up after one that ended by itself; called at most once.</summary>
    protected abstract void StopService();

    public override void StopJob()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
            return;
        SetJobState(JobState.Stopping);
        try
        {
            _metrics?.Dispose();
            StopService();
        }
        finally
        {
            SetJobState(JobState.Stopped);
        }
    }

    public override void StopJob(bool force, string reason) => StopJob();

    // Stop-Job calls the asynchronous form and waits for StopJobCompleted.
    public override void StopJobAsync() => Task.Run(() =>
    {
        Exception? error = null;
        try
        {
            StopJob();
        }
        catch (Exception e)
        {
            error = e;
        }
        OnStopJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(error, false, null));
    });

    public override void StopJobAsync(bool force, string reason) => StopJobAsync();

    public override void StartJob() { }

    public override void StartJobAsync() => OnStartJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(null, false, null));

    public override void SuspendJob() => throw new NotSupportedException("Glass jobs cannot be suspended; stop them with Stop-Job.");

    public override void SuspendJobAsync() => SuspendJob();

    public override void SuspendJob(bool force, string reason) => SuspendJob();

    public override void SuspendJobAsync(bool force, string reason) => SuspendJob();

    public override void ResumeJob() => throw new NotSupportedException("Glass jobs cannot be suspended or resumed.");

    public override void ResumeJobAsync() => ResumeJob();

    public override void UnblockJob() { }

    public override void UnblockJobAsync() => OnUnblockJobCompleted(new System.ComponentModel.AsyncCompletedEventArgs(null, false, null));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            StopJob();
        base.Dispose(disposing);
    }

    /// <summary>Marks the job finished when the service's task ends on its own.</summary>
    internal void FollowCompletion(Task completion) =>
        completion.ContinueWith(t => Finish(t.Exception?.GetBaseException()), TaskScheduler.Default);
}
