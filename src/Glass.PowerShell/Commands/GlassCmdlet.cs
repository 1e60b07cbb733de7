using System.Management.Automation;
using System.Net;
using System.Net.Sockets;

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
            _ = task.ContinueWith(static t => (t.Result as IDisposable)?.Dispose(), CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            throw new PipelineStoppedException();
        }
    }
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
