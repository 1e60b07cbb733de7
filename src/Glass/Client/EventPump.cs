using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Glass.Interop;

namespace Glass.Client;

/// <summary>
/// Both directions of one relayed connection, moved by a <see cref="SocketLoop"/> thread as the
/// sockets become ready (Linux): small messages through the loop's buffer (a recv and a send, no
/// thread hand-off), and a direction that has carried <c>spliceAfter</c> bytes through a pipe with
/// splice(2), so bulk never crosses user space. A connection holds a buffer only while its peer
/// cannot take the bytes, and a pipe only once it is bulk. Each direction ends with a half-close
/// on the other side; a reset or an error on either side resets both.
/// </summary>
internal sealed unsafe class EventPump : LoopHandler
{
    // Bytes a direction moves before the loop turns to other connections.
    private const int Budget = 256 * 1024;
    private const int PipeSize = 256 * 1024;

    /// <summary>
    /// Directions that splice at once in this process: each holds two descriptors and up to
    /// <see cref="PipeSize"/> of kernel memory; further bulk directions copy through the loop.
    /// </summary>
    internal const int MaxSpliced = 64;
    private static int s_spliced;

    private readonly Socket _a, _b;
    private readonly int _fa, _fb;
    private readonly long _spliceAfter;
    private readonly Direction _ab, _ba;
    private readonly TaskCompletionSource<(long, long)> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationTokenRegistration _cancel;
    private bool _refA, _refB, _ended;

    private EventPump(SocketLoop loop, Socket a, Socket b, long spliceAfter) : base(loop)
    {
        _a = a;
        _b = b;
        _spliceAfter = spliceAfter;
        // The descriptors stay ours until the pump ends, even if the owner disposes the sockets.
        a.SafeHandle.DangerousAddRef(ref _refA);
        try
        {
            b.SafeHandle.DangerousAddRef(ref _refB);
        }
        catch
        {
            a.SafeHandle.DangerousRelease();
            throw;
        }
        _fa = (int)a.SafeHandle.DangerousGetHandle();
        _fb = (int)b.SafeHandle.DangerousGetHandle();
        _ab = new Direction(_fa, _fb);
        _ba = new Direction(_fb, _fa);
    }

    /// <summary>
    /// Moves bytes both ways until both directions have ended or one side failed; returns the
    /// bytes moved a→b and b→a. Cancelling resets both sockets.
    /// </summary>
    public static Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, long spliceAfter, CancellationToken ct)
    {
        EventPump pump;
        try
        {
            a.Blocking = false;
            b.Blocking = false;
            pump = new EventPump(SocketLoop.Next(), a, b, spliceAfter);
        }
        catch (ObjectDisposedException)
        {
            return Task.FromResult((0L, 0L));
        }
        if (spliceAfter == 0)
        {
            TrySplice(pump._ab);
            TrySplice(pump._ba);
        }
        // Cancellation is registered first: the pump can end before that assignment only through
        // it, and a registration that fired is gone from the token already.
        pump._cancel = ct.UnsafeRegister(static p => ((EventPump)p!).Cancel(), pump);
        // Registering reports what is ready already (edge-triggered), and no event is handled until
        // both descriptors are in: an event for the first could otherwise end the pump (closing
        // both) before the second is added, which would then register a closed or reused one.
        var failed = pump.Loop.Add(pump, pump._fa, 0) != 0 || pump.Loop.Add(pump, pump._fb, 1) != 0;
        if (Interlocked.Exchange(ref pump._state, Running) == Missed || failed)
            pump.Loop.Post(failed ? pump.Abort : pump.Resume);
        return pump._done.Task;
    }

    // Registering: events (and a cancellation) that arrive meanwhile are noted, not handled.
    private const int Registering = 0, Missed = 1, Running = 2;
    private int _state;
    private volatile bool _cancelRequested;

    /// <summary>On the loop's thread: true while the registrar has yet to finish (it replays what was missed).</summary>
    private bool Deferred() =>
        Volatile.Read(ref _state) != Running && Interlocked.CompareExchange(ref _state, Missed, Registering) != Running;

    // Edge-triggered events do not repeat: after a missed one, both directions move as far as they can.
    private void Resume()
    {
        if (_cancelRequested)
        {
            Abort();
            return;
        }
        Progress(_ab);
        Progress(_ba);
    }

    public override void OnEvents(uint events, int side)
    {
        if (Deferred())
            return;
        var reading = side == 0 ? _ab : _ba;
        var writing = side == 0 ? _ba : _ab;
        // Each direction reads until EAGAIN: an edge-triggered event does not come again for bytes
        // already there. (Stopping after a short read lost connections under churn.)
        if ((events & (Epoll.EPOLLIN | Epoll.EPOLLRDHUP | Epoll.EPOLLHUP | Epoll.EPOLLERR)) != 0)
            Progress(reading);
        if ((events & (Epoll.EPOLLOUT | Epoll.EPOLLHUP | Epoll.EPOLLERR)) != 0 && writing.Waiting)
            Progress(writing);
    }

    public override void Continue()
    {
        foreach (var d in (ReadOnlySpan<Direction>)[_ab, _ba])
        {
            if (d.Deferred)
            {
                d.Deferred = false;
                Progress(d);
            }
        }
    }

    public override void Fail(Exception e) => Abort();

    private void Progress(Direction d)
    {
        var budget = Budget;
        while (!d.Done && !_ended)
        {
            // First what the other side could not take yet.
            if (d.InPipe > 0)
            {
                var m = Splice.Move(d.PipeRead!.Value, d.To, d.InPipe, Splice.SPLICE_F_MOVE | Splice.SPLICE_F_NONBLOCK);
                if (m < 0)
                    return; // full: EPOLLOUT on the other side resumes
                d.InPipe -= m;
                continue;
            }
            if (d.PendingCount > 0)
            {
                var m = Send(d.To, d.Pending.AsSpan(d.PendingStart, d.PendingCount));
                if (m < 0)
                    return;
                d.PendingStart += m;
                d.PendingCount -= m;
                if (d.PendingCount == 0)
                {
                    ArrayPool<byte>.Shared.Return(d.Pending!);
                    d.Pending = null;
                }
                continue;
            }
            if (d.Eof)
            {
                // EOF travels on; an error here is the other side's failure.
                if (Epoll.shutdown(d.To, Epoll.SHUT_WR) != 0)
                {
                    Abort();
                    return;
                }
                d.Done = true;
                if (_ab.Done && _ba.Done)
                    End(aborted: false);
                return;
            }
            if (budget <= 0)
            {
                if (!d.Deferred)
                {
                    d.Deferred = true;
                    Loop.Defer(this);
                }
                return;
            }
            if (d.PipeRead is not null)
            {
                var n = Splice.Move(d.From, d.PipeWrite!.Value, PipeSize, Splice.SPLICE_F_MOVE | Splice.SPLICE_F_NONBLOCK);
                if (n < 0)
                    return; // nothing to read: the next edge resumes
                if (n == 0)
                {
                    // End of stream, or a reset that splice reported as one: a peek tells them apart.
                    byte one;
                    if (Epoll.recv(d.From, &one, 1, Epoll.MSG_PEEK | Libc.MSG_DONTWAIT) < 0 && Marshal.GetLastPInvokeError() is not (Libc.EAGAIN or Libc.EINTR))
                    {
                        Abort();
                        return;
                    }
                    d.Eof = true;
                    continue;
                }
                d.InPipe = n;
                d.Total += n;
                budget -= n;
                continue;
            }
            var buffer = Loop.Buffer;
            nint r;
            fixed (byte* p = buffer)
                r = Epoll.recv(d.From, p, (nuint)buffer.Length, Libc.MSG_DONTWAIT);
            if (r == 0)
            {
                d.Eof = true;
                continue;
            }
            if (r < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                    continue;
                if (errno != Libc.EAGAIN)
                    Abort();
                return;
            }
            d.Total += r;
            budget -= (int)r;
            var sent = Send(d.To, buffer.AsSpan(0, (int)r));
            if (sent < 0 && _ended)
                return;
            sent = Math.Max(sent, 0);
            if (sent < r)
            {
                // Kept only until the other side has room (EPOLLOUT).
                d.Pending = ArrayPool<byte>.Shared.Rent((int)r - sent);
                buffer.AsSpan(sent, (int)r - sent).CopyTo(d.Pending);
                d.PendingStart = 0;
                d.PendingCount = (int)r - sent;
            }
            else if (_spliceAfter > 0 && d.Total >= _spliceAfter && d.PipeRead is null)
                TrySplice(d);
        }
    }

    /// <summary>Bytes sent, or -1 when the socket is full (EAGAIN) or failed (the pump is then aborted).</summary>
    private int Send(int fd, ReadOnlySpan<byte> data)
    {
        while (true)
        {
            nint n;
            fixed (byte* p = data)
                n = Epoll.send(fd, p, (nuint)data.Length, Epoll.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR)
                continue;
            if (errno != Libc.EAGAIN)
                Abort();
            return -1;
        }
    }

    // Bulk from here on, when a pipe can be had; without one the copy goes on.
    private static void TrySplice(Direction d)
    {
        if (Interlocked.Increment(ref s_spliced) > MaxSpliced)
        {
            Interlocked.Decrement(ref s_spliced);
            return;
        }
        try
        {
            (d.PipeRead, d.PipeWrite) = Splice.CreatePipe(PipeSize);
        }
        catch (KernelException)
        {
            Interlocked.Decrement(ref s_spliced);
        }
    }

    private void Cancel()
    {
        _cancelRequested = true;
        Loop.Post(() =>
        {
            if (!Deferred())
                Abort();
        });
    }

    /// <summary>Both sides are reset: a failure on one must not look like a clean end on the other.</summary>
    private void Abort()
    {
        if (_ended)
            return;
        Epoll.LingerZero(_fa);
        Epoll.LingerZero(_fb);
        End(aborted: true);
    }

    private void End(bool aborted)
    {
        _ended = true;
        Loop.Remove(this, _fa, _fb);
        foreach (var d in (ReadOnlySpan<Direction>)[_ab, _ba])
        {
            if (d.PipeRead is not null)
            {
                d.PipeRead.Dispose();
                d.PipeWrite!.Dispose();
                Interlocked.Decrement(ref s_spliced);
            }
            if (d.Pending is not null)
                ArrayPool<byte>.Shared.Return(d.Pending);
            d.Pending = null;
        }
        if (_refA)
            _a.SafeHandle.DangerousRelease();
        if (_refB)
            _b.SafeHandle.DangerousRelease();
        _refA = _refB = false;
        if (aborted)
        {
            // Closed now (SO_LINGER 0: a reset), so the peers learn of it without waiting for the owner.
            _a.Dispose();
            _b.Dispose();
        }
        _cancel.Unregister();
        _done.TrySetResult((_ab.Total, _ba.Total));
    }

    private sealed class Direction(int from, int to)
    {
        public readonly int From = from;
        public readonly int To = to;
        public long Total;
        public byte[]? Pending;
        public int PendingStart, PendingCount;
        public SafeFileDescriptor? PipeRead, PipeWrite;
        public int InPipe;
        public bool Eof, Done, Deferred;

        /// <summary>Has something for the other side that it could not take: writability resumes it.</summary>
        public bool Waiting => !Done && (InPipe > 0 || PendingCount > 0);
    }
}
