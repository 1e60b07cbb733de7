using System.Collections.Concurrent;
using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>
/// A cmdlet that waits on the network: Ctrl+C (StopProcessing) cancels the wait at once, and
/// what was being started is stopped rather than left running outside any job.
/// </summary>
public abstract class GlassCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Cancelled when the user stops the pipeline (Ctrl+C).</summary>
    protected CancellationToken Cancelled => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    /// <summary>Waits for <paramref name="task"/>; a stopped pipeline ends the wait and disposes what the task still makes.</summary>
    protected T Wait<T>(Task<T> task)
    {
        try
        {
            return task.WaitAsync(Cancelled).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (Cancelled.IsCancellationRequested)
        {
            DisposeLater(task);
            throw new PipelineStoppedException();
        }
    }

    /// <summary>
    /// Runs <paramref name="start"/> for at most <paramref name="timeoutSec"/> seconds, showing a
    /// progress bar while it waits; Ctrl+C stops it. Running out of time is a router-unreachable
    /// error that names <paramref name="what"/> and -TimeoutSec.
    /// </summary>
    protected T WaitFor<T>(Func<CancellationToken, Task<T>> start, string activity, string what, int timeoutSec)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Cancelled);
        deadline.CancelAfter(TimeSpan.FromSeconds(timeoutSec));
        var began = Environment.TickCount64;
        var task = start(deadline.Token);
        var progress = new ProgressRecord(ActivityId, activity, $"Waiting for {what}");
        var shown = false;
        try
        {
            // Progress only for a wait a user would notice; Ctrl+C ends the wait within the tick.
            while (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(200))
            {
                if (Cancelled.IsCancellationRequested)
                    break;
                var elapsed = (Environment.TickCount64 - began) / 1000.0;
                if (elapsed < 0.5)
                    continue;
                progress.StatusDescription = $"Waiting for {what}: {elapsed:0} s of {timeoutSec} s (-TimeoutSec)";
                progress.PercentComplete = (int)Math.Min(99, 100 * elapsed / timeoutSec);
                progress.SecondsRemaining = (int)Math.Max(0, timeoutSec - elapsed);
                WriteProgress(progress);
                shown = true;
            }
            return task.WaitAsync(Cancelled).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (Cancelled.IsCancellationRequested)
        {
            DisposeLater(task);
            throw new PipelineStoppedException();
        }
        catch (Exception e) when (e is OperationCanceledException && deadline.IsCancellationRequested
            || e is GlassException { InnerException: OperationCanceledException or Glass.Protocol.ProtocolException { Code: "timeout" } })
        {
            // The inner waits run on the same patience, so their own timer may fire first: a
            // timeout is the user's -TimeoutSec either way, not a broken answer.
            throw new GlassException(GlassErrors.RouterUnreachable,
                $"{char.ToUpperInvariant(what[0])}{what[1..]} did not answer within {timeoutSec} s. Check that it runs and is reachable, or allow longer with -TimeoutSec.", e);
        }
        finally
        {
            if (shown)
                WriteProgress(new ProgressRecord(ActivityId, activity, "Done") { RecordType = ProgressRecordType.Completed });
        }
    }

    private int ActivityId => Math.Abs(GetType().Name.GetHashCode(StringComparison.Ordinal)) % 10_000;

    private static void DisposeLater<T>(Task<T> task) =>
        _ = task.ContinueWith(static t => (t.Result as IDisposable)?.Dispose(), CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);

    /// <summary>
    /// Runs <paramref name="jobs"/> in the foreground until Ctrl+C, SIGTERM or one of them ends,
    /// writing what they report (information, warnings, errors) as it comes; then stops them in
    /// reverse order and removes them from the session. This is what -Wait does for a service
    /// manager such as systemd.
    /// </summary>
    protected void Serve(IReadOnlyList<GlassJob> jobs)
    {
        using var wake = new SemaphoreSlim(0);
        var records = new ConcurrentQueue<object>();
        void OnSignal(PosixSignalContext context)
        {
            // SIGTERM (systemd's stop) and SIGINT end the wait instead of the process; the jobs
            // are then stopped here and pwsh exits normally.
            context.Cancel = true;
            _stopping.Cancel();
            wake.Release();
        }
        void OnStateChanged(object? sender, JobStateEventArgs e)
        {
            if (e.JobStateInfo.State is not (JobState.Running or JobState.NotStarted))
                wake.Release();
        }
        void Tail<TRecord>(PSDataCollection<TRecord> stream)
        {
            foreach (var earlier in stream)
                records.Enqueue(earlier!);
            stream.DataAdded += (_, e) =>
            {
                try
                {
                    records.Enqueue(stream[e.Index]!);
                    wake.Release();
                }
                catch (ArgumentOutOfRangeException)
                {
                    // Dropped from the ring meanwhile.
                }
            };
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var cancelled = Cancelled.Register(() => wake.Release());
        foreach (var j in jobs)
        {
            j.StateChanged += OnStateChanged;
            Tail(j.Information);
            Tail(j.Warning);
            Tail(j.Error);
        }
        WriteVerbose($"Running in the foreground: {string.Join(", ", jobs.Select(j => j.Name))}. Stop with Ctrl+C or SIGTERM.");
        try
        {
            while (!Cancelled.IsCancellationRequested && !jobs.Any(Ended))
            {
                wake.Wait();
                Flush(records);
            }
        }
        finally
        {
            foreach (var j in jobs)
                j.StateChanged -= OnStateChanged;
            foreach (var j in Enumerable.Reverse(jobs))
            {
                j.StopJob();
                JobRepository.Remove(j);
            }
        }
        Flush(records);
        foreach (var j in jobs.Where(j => j.JobStateInfo.State == JobState.Failed))
            WriteVerbose($"{j.Name} failed.");
    }

    private void Flush(ConcurrentQueue<object> records)
    {
        while (records.TryDequeue(out var r))
        {
            switch (r)
            {
                case InformationRecord i:
                    WriteInformation(i);
                    break;
                case WarningRecord w:
                    WriteWarning(w.Message);
                    break;
                case ErrorRecord e:
                    WriteError(e);
                    break;
            }
        }
    }

    private static bool Ended(GlassJob j) => j.JobStateInfo.State is not (JobState.Running or JobState.NotStarted);
}

/// <summary>Takes an IPv4 address or a host name such as localhost for an IPAddress parameter.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class HostAddressTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        if (value is not string text || IPAddress.TryParse(text, out _))
            return inputData;
        try
        {
            return Dns.GetHostAddresses(text, AddressFamily.InterNetwork).FirstOrDefault()
                ?? throw new ArgumentTransformationMetadataException($"'{text}' has no IPv4 address.");
        }
        catch (SocketException e)
        {
            throw new ArgumentTransformationMetadataException($"'{text}' is neither an IP address nor a host name that resolves: {e.Message}", e);
        }
    }
}
