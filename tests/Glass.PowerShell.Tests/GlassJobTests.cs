using System.Management.Automation;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Tests;

/// <summary>A Glass job's life as Get-Job, Receive-Job and Stop-Job see it.</summary>
public sealed class GlassJobTests
{
    private sealed class ServiceJob() : GlassJob("test", "test", "GlassTest")
    {
        public int Stops;

        protected override void StopService() => Stops++;

        public void Follow(Task completion) => FollowCompletion(completion);
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }

    [Fact]
    public void AServiceThatFailsByItselfIsCleanedUpOnceAndTheJobFailsNamingTheCause()
    {
        using var job = new ServiceJob();
        job.MarkRunning();
        var failed = new TaskCompletionSource();
        job.Follow(failed.Task);

        failed.SetException(new GlassException(GlassErrors.ProtocolError, "the queue went away"));
        WaitFor(() => job.JobStateInfo.State == JobState.Failed, "the job to fail");
        // What it held is let go at once (a translator's rules, say), not when pwsh exits.
        Assert.Equal(1, job.Stops);
        var error = Assert.Single(job.Error);
        Assert.Equal(GlassErrors.ProtocolError, error.FullyQualifiedErrorId);
        Assert.Contains("the queue went away", error.Exception.Message);

        // Stop-Job afterwards changes nothing, and stops nothing twice.
        job.StopJob();
        Assert.Equal(1, job.Stops);
        Assert.Equal(JobState.Failed, job.JobStateInfo.State);
    }

    [Fact]
    public void AJobsErrorsHaveTheCategoriesACmdletsWouldHave()
    {
        using var job = new ServiceJob();
        job.ReportError(new GlassException(GlassErrors.Unauthorized, "Channel 0 can no longer be bound: the router refused"));
        job.ReportError(new GlassException(GlassErrors.OutOfDescriptors, "out of descriptors"));
        job.ReportError(new System.Net.Sockets.SocketException(111));
        Assert.Equal(
            [ErrorCategory.PermissionDenied, ErrorCategory.LimitsExceeded, ErrorCategory.ConnectionError],
            job.Error.Select(e => e.CategoryInfo.Category));
        Assert.Equal(GlassErrors.Unauthorized, job.Error[0].FullyQualifiedErrorId);
    }
}
