using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// epoll(7) and eventfd(2) (sys/epoll.h, sys/eventfd.h), and the non-blocking TCP calls the
/// client's own event loop makes on raw descriptors (sys/socket.h, netinet/tcp.h).
/// </summary>
internal static unsafe partial class Epoll
{
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int CLOEXEC = 0x80000;   // EPOLL_CLOEXEC, EFD_CLOEXEC, SOCK_CLOEXEC
    public const int NONBLOCK = 0x800;    // EFD_NONBLOCK, SOCK_NONBLOCK

    public const int SOCK_STREAM = 1;
    public const int SO_ERROR = 4;
    public const int SO_LINGER = 13;
    public const int IPPROTO_TCP = 6;
    public const int TCP_NODELAY = 1;
    public const int SHUT_WR = 1;
    public const int MSG_PEEK = 0x2;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int EINPROGRESS = 115;

    /// <summary>
    /// struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16): the
    /// events are read at these offsets rather than through one struct layout.
    /// </summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint send(int fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int connect(int fd, byte* addr, int addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int accept4(int fd, byte* addr, int* addrlen, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int optname, void* optval, int* optlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int optname, void* optval, int optlen);

    public static uint EventsAt(byte* events, int i) => *(uint*)(events + i * EventSize);

    public static ulong DataAt(byte* events, int i) => *(ulong*)(events + i * EventSize + DataOffset);

    /// <summary>epoll_ctl ADD or DEL; returns errno, 0 on success.</summary>
    public static int Control(int epfd, int op, int fd, uint events, ulong data)
    {
        var ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + DataOffset) = data;
        return epoll_ctl(epfd, op, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>A new non-blocking TCP socket; throws (EMFILE as <see cref="SocketError.TooManyOpenSockets"/>) when it cannot.</summary>
    public static int TcpSocket(AddressFamily family)
    {
        var fd = Libc.socket(family == AddressFamily.InterNetworkV6 ? 10 : Libc.AF_INET, SOCK_STREAM | NONBLOCK | CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
            throw ToSocketException(Marshal.GetLastPInvokeError());
        NoDelay(fd);
        return fd;
    }

    // As TcpSockets.Configure does for .NET's sockets.
    private static void NoDelay(int fd)
    {
        var one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int));
    }

    /// <summary>
    /// The next connection waiting on a listener, non-blocking and without Nagle; -1 with
    /// <paramref name="errno"/> set (EAGAIN when none waits).
    /// </summary>
    public static int Accept(int listener, out int errno)
    {
        while (true)
        {
            var fd = accept4(listener, null, null, NONBLOCK | CLOEXEC);
            if (fd >= 0)
            {
                NoDelay(fd);
                errno = 0;
                return fd;
            }
            errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
                return -1;
        }
    }

    /// <summary>Starts a connect; returns 0 when connected at once, EINPROGRESS, or another errno.</summary>
    public static int StartConnect(int fd, IPEndPoint endpoint)
    {
        var addr = stackalloc byte[28];
        new Span<byte>(addr, 28).Clear();
        var port = (ushort)endpoint.Port;
        int length;
        if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
        {
            *(ushort*)addr = 10; // AF_INET6: sockaddr_in6 { family, port, flowinfo, addr[16], scope_id }
            endpoint.Address.TryWriteBytes(new Span<byte>(addr + 8, 16), out _);
            *(uint*)(addr + 24) = (uint)endpoint.Address.ScopeId;
            length = 28;
        }
        else
        {
            *(ushort*)addr = Libc.AF_INET; // sockaddr_in { family, port, addr[4], zero[8] }
            endpoint.Address.TryWriteBytes(new Span<byte>(addr + 4, 4), out _);
            length = 16;
        }
        addr[2] = (byte)(port >> 8);
        addr[3] = (byte)port;
        while (true)
        {
            if (connect(fd, addr, length) == 0)
                return 0;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
                return errno;
        }
    }

    /// <summary>SO_ERROR: the outcome of a connect that was in progress (0 connected).</summary>
    public static int PendingError(int fd)
    {
        int value = 0, length = sizeof(int);
        return getsockopt(fd, Libc.SOL_SOCKET, SO_ERROR, &value, &length) == 0 ? value : Marshal.GetLastPInvokeError();
    }

    /// <summary>SO_LINGER {on, 0}: the close that follows sends a reset.</summary>
    public static void LingerZero(int fd)
    {
        var linger = stackalloc int[2] { 1, 0 };
        setsockopt(fd, Libc.SOL_SOCKET, SO_LINGER, linger, 2 * sizeof(int));
    }

    /// <summary>The errno as .NET's own socket errors name it, so callers handle both alike.</summary>
    public static SocketException ToSocketException(int errno) => new((int)(errno switch
    {
        11 => SocketError.WouldBlock,
        EINPROGRESS => SocketError.InProgress,
        111 => SocketError.ConnectionRefused,
        104 => SocketError.ConnectionReset,
        32 => SocketError.Shutdown,
        103 => SocketError.ConnectionAborted,
        107 => SocketError.NotConnected,
        110 => SocketError.TimedOut,
        100 => SocketError.NetworkDown,
        101 => SocketError.NetworkUnreachable,
        112 => SocketError.HostDown,
        113 => SocketError.HostUnreachable,
        98 => SocketError.AddressAlreadyInUse,
        99 => SocketError.AddressNotAvailable,
        23 or 24 => SocketError.TooManyOpenSockets,
        105 => SocketError.NoBufferSpaceAvailable,
        1 or 13 => SocketError.AccessDenied,
        _ => SocketError.SocketError,
    }));
}
