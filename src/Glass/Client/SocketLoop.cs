using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Glass.Interop;

namespace Glass.Client;

/// <summary>
/// A thread of the client's own that waits in epoll_wait over the descriptors it was given and
/// handles their events itself (Linux). .NET's socket engine hands every completion from its epoll
/// thread to a thread-pool worker: two wake-ups per event, about half of a relay hop's CPU per
/// message. The sockets given here are dialed here too (<see cref="ConnectAsync"/>), so .NET never
/// registers them. A handler is set up by whoever registers it; from its first event on, its
/// state is touched only on its loop's thread.
/// </summary>
internal sealed class SocketLoop
{
    private const int MaxEvents = 256;
    private const ulong WakeData = ulong.MaxValue;

    private static SocketLoop[]? s_loops;
    private static readonly object s_start = new();
    private static int s_next;

    private readonly int _epoll;
    private readonly int _wake;
    private int _wakePending;
    private readonly ConcurrentQueue<Action> _posted = new();
    private List<LoopHandler> _ready = [];
    private List<LoopHandler> _readySpare = [];

    // Handlers by slot; an event's data is (generation << 32) | (slot << 1) | side.
    private LoopHandler?[] _slots = new LoopHandler?[64];
    private uint[] _generations = new uint[64];
    private readonly Stack<int> _free = new();
    private int _used;
    private readonly object _table = new();

    /// <summary>One buffer per loop for the copies: a handler holds bytes only while a peer cannot take them.</summary>
    internal readonly byte[] Buffer = GC.AllocateArray<byte>(64 * 1024, pinned: true);

    public static bool IsSupported => OperatingSystem.IsLinux();

    // The loop whose thread this is, if any.
    [ThreadStatic]
    private static SocketLoop? t_current;

    /// <summary>
    /// The loops, one per core up to four, handed out in turn; on a loop's own thread, that loop:
    /// what a dial that completed here starts next (a second dial, its pump) then needs no wake-up
    /// of another thread, and its first events come in this thread's next wait.
    /// </summary>
    public static SocketLoop Next() => t_current ?? InTurn();

    /// <summary>The next loop in turn, whichever thread asks.</summary>
    public static SocketLoop InTurn()
    {
        var loops = Volatile.Read(ref s_loops) ?? Start();
        return loops[(int)((uint)Interlocked.Increment(ref s_next) % (uint)loops.Length)];
    }

    /// <summary>Whether this is <paramref name="loop"/>'s own thread.</summary>
    public static bool IsCurrent(SocketLoop loop) => t_current == loop;

    /// <summary>
    /// Starts the loops now, so that a process that later runs out of descriptors still has them.
    /// Throws <see cref="SocketException"/> (EMFILE: <see cref="SocketError.TooManyOpenSockets"/>)
    /// when not even one can be made; a later call tries again.
    /// </summary>
    public static void EnsureStarted()
    {
        if (IsSupported && Volatile.Read(ref s_loops) is null)
            Start();
    }

    private static SocketLoop[] Start()
    {
        lock (s_start)
        {
            if (s_loops is not null)
                return s_loops;
            var loops = new List<SocketLoop>();
            SocketException? failure = null;
            for (var i = 0; i < Math.Clamp(Environment.ProcessorCount, 1, 4) && failure is null; i++)
            {
                try
                {
                    loops.Add(new SocketLoop(i));
                }
                catch (SocketException e)
                {
                    failure = e;
                }
            }
            // Fewer loops than cores still serve; none is a failure of this connection, not for good.
            if (loops.Count == 0)
                throw failure!;
            Volatile.Write(ref s_loops, loops.ToArray());
            return s_loops!;
        }
    }

    private SocketLoop(int index)
    {
        _epoll = Epoll.epoll_create1(Epoll.CLOEXEC);
        if (_epoll < 0)
            throw Epoll.ToSocketException(Marshal.GetLastPInvokeError());
        _wake = Epoll.eventfd(0, Epoll.CLOEXEC | Epoll.NONBLOCK);
        if (_wake < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Libc.close(_epoll);
            throw Epoll.ToSocketException(errno);
        }
        Epoll.Control(_epoll, Epoll.EPOLL_CTL_ADD, _wake, Epoll.EPOLLIN, WakeData);
        new Thread(Run) { IsBackground = true, Name = $"glass-loop-{index}" }.Start();
    }

    /// <summary>Runs <paramref name="action"/> on the loop's thread, soon.</summary>
    public unsafe void Post(Action action)
    {
        _posted.Enqueue(action);
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            Epoll.write(_wake, &one, sizeof(ulong));
        }
    }

    /// <summary>
    /// Dials <paramref name="endpoint"/> from a new socket that .NET has never registered; the
    /// socket comes back connected, with no Nagle. Failures throw <see cref="SocketException"/>
    /// as .NET's own dial does; cancellation throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task<Socket> ConnectAsync(IPEndPoint endpoint, CancellationToken ct, bool inTurn = false)
    {
        ct.ThrowIfCancellationRequested();
        var fd = Epoll.TcpSocket(endpoint.AddressFamily);
        var op = new ConnectOperation(inTurn ? InTurn() : Next(), fd, endpoint);
        try
        {
            using (ct.UnsafeRegister(static o => ((ConnectOperation)o!).Cancel(), op))
            {
                op.Start();
                await op.Task.ConfigureAwait(false);
            }
        }
        catch
        {
            // The loop has let go of the descriptor before failing the operation.
            Libc.close(fd);
            if (op.Canceled)
                throw new OperationCanceledException($"Dialing {endpoint} was cancelled.", ct.IsCancellationRequested ? ct : default);
            throw;
        }
        return new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
    }

    /// <summary>
    /// Registers <paramref name="fd"/> (edge-triggered, both ways) for side 0 or 1 of
    /// <paramref name="handler"/>; returns errno, 0 on success. Any thread may register: the
    /// handler's first event then arrives on the loop's thread, after everything set before.
    /// </summary>
    internal int Add(LoopHandler handler, int fd, int side)
    {
        ulong data;
        lock (_table)
        {
            if (handler.Slot < 0)
            {
                if (_free.TryPop(out var slot))
                    handler.Slot = slot;
                else
                {
                    if (_used == _slots.Length)
                    {
                        Array.Resize(ref _slots, _slots.Length * 2);
                        Array.Resize(ref _generations, _generations.Length * 2);
                    }
                    handler.Slot = _used++;
                }
                _slots[handler.Slot] = handler;
            }
            data = ((ulong)_generations[handler.Slot] << 32) | ((ulong)(uint)handler.Slot << 1) | (uint)side;
        }
        return Epoll.Control(_epoll, Epoll.EPOLL_CTL_ADD, fd, Epoll.EPOLLIN | Epoll.EPOLLOUT | Epoll.EPOLLRDHUP | Epoll.EPOLLET, data);
    }

    /// <summary>Unregisters the handler's descriptors and frees its slot: no later event reaches it.</summary>
    internal void Remove(LoopHandler handler, int fd0, int fd1 = -1)
    {
        Epoll.Control(_epoll, Epoll.EPOLL_CTL_DEL, fd0, 0, 0);
        if (fd1 >= 0)
            Epoll.Control(_epoll, Epoll.EPOLL_CTL_DEL, fd1, 0, 0);
        lock (_table)
        {
            if (handler.Slot < 0)
                return;
            _slots[handler.Slot] = null;
            _generations[handler.Slot]++;
            _free.Push(handler.Slot);
            handler.Slot = -1;
        }
    }

    private LoopHandler? Find(ulong data)
    {
        var slot = (int)((uint)data >> 1);
        lock (_table)
            return slot < _used && _generations[slot] == (uint)(data >> 32) ? _slots[slot] : null;
    }

    /// <summary>Calls the handler's <see cref="LoopHandler.Continue"/> after the events at hand (fairness).</summary>
    internal void Defer(LoopHandler handler) => _ready.Add(handler);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a loop that never returns: no tiering
    private unsafe void Run()
    {
        t_current = this;
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * Epoll.EventSize));
        while (true)
        {
            var n = Epoll.epoll_wait(_epoll, events, MaxEvents, _ready.Count > 0 ? 0 : -1);
            for (var i = 0; i < n; i++)
            {
                var data = Epoll.DataAt(events, i);
                if (data == WakeData)
                {
                    ulong count;
                    Epoll.read(_wake, &count, sizeof(ulong));
                    continue;
                }
                if (Find(data) is not { } handler)
                    continue;
                try
                {
                    handler.OnEvents(Epoll.EventsAt(events, i), (int)(data & 1));
                }
                catch (Exception e)
                {
                    Fail(handler, e);
                }
            }
            // A full fence: a post that saw the flag still set must find its action dequeued below.
            if (Interlocked.Exchange(ref _wakePending, 0) != 0)
            {
                while (_posted.TryDequeue(out var action))
                {
                    try
                    {
                        action();
                    }
                    catch (Exception e)
                    {
                        Environment.FailFast("A Glass event loop action threw.", e);
                    }
                }
            }
            if (_ready.Count > 0)
            {
                var ready = _ready;
                (_ready, _readySpare) = (_readySpare, ready);
                foreach (var h in ready)
                {
                    try
                    {
                        h.Continue();
                    }
                    catch (Exception e)
                    {
                        Fail(h, e);
                    }
                }
                ready.Clear();
            }
        }
    }

    // A handler's bug ends that handler, never the loop and the other connections on it.
    private static void Fail(LoopHandler handler, Exception e)
    {
        try
        {
            handler.Fail(e);
        }
        catch (Exception again)
        {
            Environment.FailFast("A Glass event loop handler failed twice.", again);
        }
    }
}

/// <summary>Something with descriptors on a <see cref="SocketLoop"/>; called on the loop's thread only.</summary>
internal abstract class LoopHandler
{
    protected LoopHandler(SocketLoop loop) => Loop = loop;

    public SocketLoop Loop { get; }
    internal int Slot = -1;

    /// <summary>Readiness of side 0 or 1's descriptor.</summary>
    public abstract void OnEvents(uint events, int side);

    /// <summary>More work after a <see cref="SocketLoop.Defer"/>.</summary>
    public virtual void Continue() { }

    /// <summary>An unexpected exception in this handler: end it.</summary>
    public abstract void Fail(Exception e);
}

/// <summary>
/// A non-blocking connect, started on the caller's thread and finished on the loop's when the
/// socket becomes writable (or at once, by a cancellation or a failure).
/// </summary>
/// <remarks>
/// A connect that succeeds on the loop's thread runs its awaiter's continuation right there: the
/// callers' next steps are a second dial or registering a pump, a few syscalls, and each thread
/// hand-off saved is ~100-200 µs of a setup on a small virtual machine. A failure's continuation
/// (messages, a CANCEL to the controller) runs on the thread pool, away from other connections' bytes.
/// </remarks>
internal sealed class ConnectOperation(SocketLoop loop, int fd, IPEndPoint endpoint) : LoopHandler(loop)
{
    private readonly TaskCompletionSource _done = new();
    private int _finished;

    public Task Task => _done.Task;
    public bool Canceled { get; private set; }

    public void Start()
    {
        var errno = Epoll.StartConnect(fd, endpoint);
        if (errno == 0)
            Finish(null);
        else if (errno != Epoll.EINPROGRESS)
            Finish(Epoll.ToSocketException(errno));
        else if (Loop.Add(this, fd, 0) is var added and not 0)
            Finish(Epoll.ToSocketException(added));
        else if (Volatile.Read(ref _finished) != 0)
            Loop.Remove(this, fd); // cancelled while it was being registered
    }

    public override void OnEvents(uint events, int side)
    {
        if ((events & (Epoll.EPOLLOUT | Epoll.EPOLLERR | Epoll.EPOLLHUP)) == 0)
            return;
        var error = Epoll.PendingError(fd);
        Finish(error == 0 ? null : Epoll.ToSocketException(error));
    }

    public void Cancel() => Loop.Post(() =>
    {
        if (Volatile.Read(ref _finished) == 0)
        {
            Canceled = true;
            Finish(new OperationCanceledException());
        }
    });

    public override void Fail(Exception e) => Finish(e);

    private void Finish(Exception? e)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
            return;
        Loop.Remove(this, fd);
        if (e is null)
            _done.TrySetResult();
        else
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Done.TrySetException(s.Error), (Done: _done, Error: e), preferLocal: false);
    }
}

/// <summary>What an <see cref="AcceptOperation"/> hands its connections to, on the loop's thread.</summary>
internal interface IAcceptTarget
{
    /// <summary>A new connection (non-blocking, no Nagle); the target owns it.</summary>
    void Accepted(Socket connection);

    /// <summary>accept failed for want of a resource (errno EMFILE, ENFILE, ENOBUFS, ENOMEM): how long until it is tried again.</summary>
    TimeSpan AcceptFailed(int errno);
}

/// <summary>
/// Accepts a listener's connections on a loop's thread, edge-triggered, and hands each to its
/// target there: what the target starts next (a dial, its pump) then stays on this loop, with no
/// wake-up of .NET's socket thread and a pool worker per connection.
/// </summary>
internal sealed class AcceptOperation : LoopHandler
{
    private readonly int _fd;
    private readonly IAcceptTarget _target;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _stopping;
    private Timer? _retry;

    private AcceptOperation(SocketLoop loop, Socket listener, IAcceptTarget target) : base(loop)
    {
        _fd = (int)listener.SafeHandle.DangerousGetHandle();
        _target = target;
    }

    /// <summary>Completes once <see cref="Stop"/> has taken the listener off the loop.</summary>
    public Task Completion => _stopped.Task;

    /// <summary>Accepts from <paramref name="listener"/> on a loop until stopped; the caller keeps the listener and closes it after <see cref="Stop"/>.</summary>
    public static AcceptOperation Start(Socket listener, IAcceptTarget target)
    {
        listener.Blocking = false;
        var op = new AcceptOperation(SocketLoop.Next(), listener, target);
        // Edge-triggered: connections already waiting are reported at once.
        if (op.Loop.Add(op, op._fd, 0) is var errno and not 0)
            throw Epoll.ToSocketException(errno);
        return op;
    }

    public override void OnEvents(uint events, int side) => Drain();

    // Never a silent end of accepting: whatever threw, the listener is tried again soon.
    public override void Fail(Exception e) => RetryLater(TimeSpan.FromMilliseconds(100));

    private void RetryLater(TimeSpan wait)
    {
        if (_stopping)
            return;
        _retry?.Dispose();
        _retry = new Timer(static o => { var op = (AcceptOperation)o!; op.Loop.Post(op.DrainPosted); }, this, wait, Timeout.InfiniteTimeSpan);
    }

    // A posted action that throws ends the process (SocketLoop): a fault here (the owner's
    // AcceptFailed, say) retries the listener as one in an event would.
    private void DrainPosted()
    {
        try
        {
            Drain();
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Drain()
    {
        while (!_stopping)
        {
            var fd = Epoll.Accept(_fd, out var errno);
            if (fd >= 0)
            {
                Socket connection;
                try
                {
                    connection = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                }
                catch (Exception)
                {
                    Libc.close(fd);
                    continue;
                }
                try
                {
                    _target.Accepted(connection);
                }
                catch (Exception)
                {
                    // A bug in serving one connection ends that one, not the listener.
                    connection.Close(0);
                }
                continue;
            }
            if (errno == Libc.EAGAIN)
                return;
            if (errno is Libc.EMFILE or Libc.ENFILE or Libc.ENOBUFS or Libc.ENOMEM)
            {
                // The connection still waits, and no new edge comes for it: try again later.
                var wait = _target.AcceptFailed(errno);
                if (wait > TimeSpan.Zero)
                {
                    RetryLater(wait);
                    return;
                }
                continue;
            }
            // The listener is gone.
            if (errno is Libc.EBADF or Libc.EINVAL)
                return;
            // A connection that was reset while it waited (ECONNABORTED) and the like: the next one.
        }
    }

    /// <summary>Takes the listener off the loop; waits for that unless called on the loop's own thread.</summary>
    public void Stop()
    {
        void Detach()
        {
            if (_stopping)
                return;
            _stopping = true;
            _retry?.Dispose();
            Loop.Remove(this, _fd);
            _stopped.TrySetResult();
        }
        if (SocketLoop.IsCurrent(Loop))
            Detach();
        else
        {
            Loop.Post(Detach);
            _stopped.Task.Wait(TimeSpan.FromSeconds(2));
        }
    }
}
