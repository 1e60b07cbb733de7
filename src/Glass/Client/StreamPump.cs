using System.Buffers;
using System.Net.Sockets;

namespace Glass.Client;

/// <summary>
/// Copies bytes both ways between two connected sockets with pooled buffers. Each direction ends
/// with a half-close (shutdown of sending) on the other side, so EOF travels end to end.
/// </summary>
public static class StreamPump
{
    private const int BufferSize = 64 * 1024;

    /// <summary>
    /// Returns the bytes copied a→b and b→a once both directions have ended. On Linux, while
    /// few connections run, the bytes move with splice(2) instead (<see cref="SplicePump"/>).
    /// </summary>
    public static async Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, CancellationToken ct)
    {
        if (SplicePump.TryEnter())
        {
            try
            {
                return await SplicePump.RunAsync(a, b, ct).ConfigureAwait(false);
            }
            finally
            {
                SplicePump.Exit();
            }
        }
        return await CopyBothAsync(a, b, ct).ConfigureAwait(false);
    }

    /// <summary>The pooled-buffer copy, for any platform and any number of connections.</summary>
    public static async Task<(long AToB, long BToA)> CopyBothAsync(Socket a, Socket b, CancellationToken ct)
    {
        var ab = CopyAsync(a, b, ct);
        var ba = CopyAsync(b, a, ct);
        // A reset on one side ends both at once: the other direction may be waiting for bytes
        // that will never come.
        if ((await Task.WhenAny(ab, ba).ConfigureAwait(false)).IsFaulted)
            Abort(a, b);
        try
        {
            await Task.WhenAll(ab, ba).ConfigureAwait(false);
        }
        catch
        {
            Abort(a, b);
        }
        return (ab.IsCompletedSuccessfully ? ab.Result : 0, ba.IsCompletedSuccessfully ? ba.Result : 0);
    }

    private static void Abort(Socket a, Socket b)
    {
        a.Close(0);
        b.Close(0);
    }

    private static async Task<long> CopyAsync(Socket from, Socket to, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long total = 0;
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0)
                    break;
                var sent = 0;
                while (sent < n)
                    sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, ct).ConfigureAwait(false);
                total += n;
            }
            to.Shutdown(SocketShutdown.Send);
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
