using System.Buffers;
using System.Net.Sockets;

namespace Glass.Client;

/// <summary>
/// Copies bytes both ways between two connected sockets until both directions have ended. On
/// Linux an <see cref="EventPump"/> on the client's own event loop does it (no thread hand-off per
/// message; a direction that has carried <see cref="SpliceAfter"/> bytes moves on to splice(2), so
/// bulk never crosses user space); elsewhere, .NET's asynchronous copy through a pooled buffer.
/// Each direction ends with a half-close (shutdown of sending) on the other side, so EOF travels
/// end to end; a reset on one side resets the other.
/// </summary>
public static class StreamPump
{
    private const int BufferSize = 64 * 1024;

    /// <summary>Bytes a direction copies before it moves to splice, where splice is supported.</summary>
    public const long SpliceAfter = 1 << 20;

    /// <summary>Returns the bytes copied a→b and b→a once both directions have ended.</summary>
    public static Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, CancellationToken ct) =>
        RunAsync(a, b, SpliceAfter, ct);

    /// <summary>
    /// As <see cref="RunAsync(Socket, Socket, CancellationToken)"/>, with the bytes after which a
    /// direction moves to splice: 0 at once, negative never.
    /// </summary>
    public static Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, long spliceAfter, CancellationToken ct) =>
        SocketLoop.IsSupported ? EventPump.RunAsync(a, b, spliceAfter, ct) : CopyBothAsync(a, b, ct);

    /// <summary>.NET's asynchronous copy only, for any platform.</summary>
    public static async Task<(long AToB, long BToA)> CopyBothAsync(Socket a, Socket b, CancellationToken ct)
    {
        var aborted = false;
        void Abort()
        {
            // Close(0) resets, so the peers learn of the failure.
            aborted = true;
            a.Close(0);
            b.Close(0);
        }
        var ab = CopyAsync(a, b, ct);
        var ba = CopyAsync(b, a, ct);
        await using (ct.Register(Abort))
        {
            // A reset on one side ends both at once: the other direction may be waiting for bytes
            // that will never come.
            if ((await Task.WhenAny(ab, ba).ConfigureAwait(false)).IsFaulted && !aborted)
                Abort();
            try
            {
                await Task.WhenAll(ab, ba).ConfigureAwait(false);
            }
            catch
            {
                if (!aborted)
                    Abort();
            }
        }
        return (ab.IsCompletedSuccessfully ? ab.Result : 0, ba.IsCompletedSuccessfully ? ba.Result : 0);
    }

    private static async Task<long> CopyAsync(Socket from, Socket to, CancellationToken ct)
    {
        byte[]? buffer = null;
        long total = 0;
        try
        {
            while (true)
            {
                if (buffer is null || from.Available == 0)
                {
                    // Nothing to read: wait without a buffer (a zero-byte receive, as Kestrel
                    // does), so an idle connection holds none and 10,000 of them cost kilobytes.
                    if (buffer is not null)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = null;
                    }
                    await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, ct).ConfigureAwait(false);
                    buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                }
                var n = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return total;
                }
                var sent = 0;
                while (sent < n)
                    sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, ct).ConfigureAwait(false);
                total += n;
            }
        }
        finally
        {
            if (buffer is not null)
                ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
