using System.Net.Sockets;
using Glass.Interop;

namespace Glass.Client;

/// <summary>
/// One direction of a <see cref="StreamPump"/> that has proved to be bulk: bytes move socket →
/// pipe → socket with splice(2) on a thread of its own, waiting with poll(2) when a socket is not
/// ready (.NET keeps the descriptors non-blocking). A thread per direction is why only
/// <see cref="MaxConcurrent"/> directions do this at once; the others keep the pooled copy.
/// </summary>
public static class SplicePump
{
    private const int Chunk = 256 * 1024;
    private const int PollMs = 250;
    private static int s_active;

    /// <summary>Directions moved with splice at once; further ones keep the pooled copy.</summary>
    public static int MaxConcurrent { get; set; } = 32;

    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>Claims a slot; false when splice is unsupported or all slots are taken.</summary>
    internal static bool TryEnter()
    {
        if (!IsSupported)
            return false;
        if (Interlocked.Increment(ref s_active) <= MaxConcurrent)
            return true;
        Interlocked.Decrement(ref s_active);
        return false;
    }

    internal static void Exit() => Interlocked.Decrement(ref s_active);

    /// <summary>Moves the rest of one direction on a new thread; returns the bytes moved.</summary>
    internal static Task<long> MoveAsync(Socket from, Socket to, PumpState state)
    {
        var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.TrySetResult(Move(from, to, state));
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        })
        { IsBackground = true, Name = "glass-splice" };
        thread.Start();
        return done.Task;
    }

    private static long Move(Socket from, Socket to, PumpState state)
    {
        var (read, write) = Splice.CreatePipe(Chunk);
        using (read)
        using (write)
        {
            var added = false;
            var addedTo = false;
            try
            {
                // Keep both descriptors alive while the raw fds are in use.
                from.SafeHandle.DangerousAddRef(ref added);
                to.SafeHandle.DangerousAddRef(ref addedTo);
                var src = (int)from.SafeHandle.DangerousGetHandle();
                var dst = (int)to.SafeHandle.DangerousGetHandle();
                long total = 0;
                while (true)
                {
                    var n = Splice.Move(src, write.Value, Chunk, Splice.SPLICE_F_MOVE);
                    if (n < 0)
                    {
                        // Short waits, so an abort that shuts down only the other socket is seen.
                        if (state.Aborted)
                            throw new OperationCanceledException();
                        Splice.Wait(src, Splice.POLLIN, PollMs);
                        continue;
                    }
                    if (n == 0)
                    {
                        // End of stream, or a reset that splice reported as one: a peeking
                        // receive throws for a reset and returns 0 at the end. (SO_ERROR also
                        // reports soft errors, which end nothing: it once reset a clean end.)
                        Span<byte> peek = stackalloc byte[1];
                        from.Receive(peek, SocketFlags.Peek);
                        break;
                    }
                    total += n;
                    while (n > 0)
                    {
                        // No SPLICE_F_MORE: it corks the socket (~200 ms a hop for small writes);
                        // the kernel sets MSG_MORE itself while the pipe holds more.
                        var m = Splice.Move(read.Value, dst, n, Splice.SPLICE_F_MOVE);
                        if (m >= 0)
                        {
                            n -= m;
                            continue;
                        }
                        if (state.Aborted)
                            throw new OperationCanceledException();
                        Splice.Wait(dst, Splice.POLLOUT, PollMs);
                    }
                }
                if (!state.Aborted)
                    to.Shutdown(SocketShutdown.Send);
                return total;
            }
            finally
            {
                if (added)
                    from.SafeHandle.DangerousRelease();
                if (addedTo)
                    to.SafeHandle.DangerousRelease();
            }
        }
    }
}
