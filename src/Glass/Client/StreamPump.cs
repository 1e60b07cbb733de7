using System.Buffers;
using System.Net.Sockets;

namespace Glass.Client;

/// <summary>
/// Copies bytes both ways between two connected sockets. Each direction starts as a copy through
/// a pooled buffer (no thread of its own: cheap to start, quick for small exchanges) and, once it
/// has carried <see cref="SpliceAfter"/> bytes, moves on to splice(2) on a thread of its own
/// (<see cref="SplicePump"/>), so bulk never crosses user space. Each direction ends with a
/// half-close (shutdown of sending) on the other side, so EOF travels end to end.
/// </summary>
public static class StreamPump
{
    private const int BufferSize = 64 * 1024;

    /// <summary>Bytes a direction copies before it moves to splice, where splice is supported.</summary>
    public const long SpliceAfter = 1 << 20;

    /// <summary>Returns the bytes copied a→b and b→a once both directions have ended.</summary>
    public static Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, CancellationToken ct) =>
        RunAsync(a, b, SplicePump.IsSupported ? SpliceAfter : -1, ct);

    /// <summary>
    /// As <see cref="RunAsync(Socket, Socket, CancellationToken)"/>, with the bytes after which a
    /// direction moves to splice: 0 at once, negative never.
    /// </summary>
    public static async Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, long spliceAfter, CancellationToken ct)
    {
        var state = new PumpState();
        var ab = CopyAsync(a, b, spliceAfter, state, ct);
        var ba = CopyAsync(b, a, spliceAfter, state, ct);
        // Aborting shuts the receiving sides down, which also wakes a splice thread blocked on them.
        await using (ct.Register(() => Abort(a, b, state)))
        {
            // A reset on one side ends both at once: the other direction may be waiting for bytes
            // that will never come.
            if ((await Task.WhenAny(ab, ba).ConfigureAwait(false)).IsFaulted)
                Abort(a, b, state);
            try
            {
                await Task.WhenAll(ab, ba).ConfigureAwait(false);
            }
            catch
            {
                Abort(a, b, state);
            }
        }
        return (ab.IsCompletedSuccessfully ? ab.Result : 0, ba.IsCompletedSuccessfully ? ba.Result : 0);
    }

    /// <summary>The pooled-buffer copy only, for any platform and any number of connections.</summary>
    public static Task<(long AToB, long BToA)> CopyBothAsync(Socket a, Socket b, CancellationToken ct) =>
        RunAsync(a, b, -1, ct);

    private static void Abort(Socket a, Socket b, PumpState state)
    {
        // Shutting down only the receive side wakes a splice thread without sending a FIN (and the
        // flag keeps it from sending one), so Close(0) resets; Close waits for the thread to let
        // go of the descriptor.
        state.Aborted = true;
        foreach (var s in new[] { a, b })
        {
            try
            {
                s.Shutdown(SocketShutdown.Receive);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
        a.Close(0);
        b.Close(0);
    }

    private static async Task<long> CopyAsync(Socket from, Socket to, long spliceAfter, PumpState state, CancellationToken ct)
    {
        byte[]? buffer = null;
        long total = 0;
        try
        {
            while (spliceAfter < 0 || total < spliceAfter || !SplicePump.TryEnter())
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
        // Nothing is buffered here: the rest of the stream moves socket to socket in the kernel.
        try
        {
            return total + await SplicePump.MoveAsync(from, to, state).ConfigureAwait(false);
        }
        finally
        {
            SplicePump.Exit();
        }
    }
}

/// <summary>Shared by the two directions of one pump.</summary>
internal sealed class PumpState
{
    public volatile bool Aborted;
}
