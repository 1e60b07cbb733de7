using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Glass.Client;

/// <summary>
/// Carries one connection to a router endpoint over a pair of streams, such as a process's
/// standard input and output (ssh's ProxyCommand): input to the socket, the socket to output.
/// The end of input half-closes the connection; the peer's end of stream ends the output.
/// </summary>
public static class StreamBridge
{
    private const int BufferSize = 64 * 1024;

    /// <summary>Returns the bytes sent and received once both directions have ended.</summary>
    public static async Task<(long Sent, long Received)> RunAsync(IPEndPoint endpoint, Stream input, Stream output, CancellationToken ct, TimeSpan? patience = null)
    {
        var wait = patience ?? ControllerConnection.ReplyTimeout;
        using var socket = TcpSockets.Create(endpoint.AddressFamily);
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(wait);
            try
            {
                await socket.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new GlassException(GlassErrors.RouterUnreachable, $"The router endpoint {endpoint} did not answer within {wait.TotalSeconds:0} s.");
            }
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sent = new StrongBox<long>();
        var up = Up(input, socket, sent, stop.Token);
        var down = Down(socket, output, stop.Token);
        // The connection's end ends the bridge: input may never end by itself (a terminal).
        var received = await down.ConfigureAwait(false);
        stop.Cancel();
        // A read of a console or pipe may not heed the cancellation: give it a moment, then leave
        // it (the process is about to exit) rather than wait for input that may never come.
        if (await Task.WhenAny(up, Task.Delay(InputGrace, CancellationToken.None)).ConfigureAwait(false) != up)
            _ = up.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        else if (up.IsFaulted && up.Exception!.GetBaseException() is not (OperationCanceledException or SocketException or IOException or ObjectDisposedException))
            await up.ConfigureAwait(false); // a bug: let it show
        return (Interlocked.Read(ref sent.Value), received);
    }

    /// <summary>How long the end of the connection waits for the input side to stop.</summary>
    private static readonly TimeSpan InputGrace = TimeSpan.FromSeconds(1);

    private static async Task Up(Stream input, Socket socket, StrongBox<long> total, CancellationToken ct)
    {
        var buffer = new byte[BufferSize];
        int n;
        while ((n = await input.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            for (var sent = 0; sent < n;)
                sent += await socket.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, ct).ConfigureAwait(false);
            Interlocked.Add(ref total.Value, n);
        }
        socket.Shutdown(SocketShutdown.Send);
    }

    private static async Task<long> Down(Socket socket, Stream output, CancellationToken ct)
    {
        var buffer = new byte[BufferSize];
        long total = 0;
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false)) > 0)
        {
            await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            // The other program waits for these bytes: never hold them back.
            await output.FlushAsync(ct).ConfigureAwait(false);
            total += n;
        }
        return total;
    }
}
