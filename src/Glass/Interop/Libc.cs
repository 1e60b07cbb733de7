using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// The few libc calls the packet path needs, with the kernel's own constant names and values
/// (sys/socket.h, netinet/in.h, linux/if_ether.h, asm-generic/socket.h, asm-generic/errno-base.h).
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    // sys/socket.h
    public const int AF_UNSPEC = 0;
    public const int AF_INET = 2;
    public const int AF_NETLINK = 16;
    public const int AF_PACKET = 17;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int MSG_DONTWAIT = 0x40;

    // netinet/in.h
    public const int IPPROTO_RAW = 255;

    // linux/if_ether.h
    public const ushort ETH_P_ALL = 0x0003;

    // asm-generic/socket.h
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_RCVTIMEO = 20;
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;

    // asm-generic/errno-base.h, errno.h
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOBUFS = 105;
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EBADF = 9;
    public const int ENOMEM = 12;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ETIMEDOUT = 110;

    /// <summary>struct sockaddr_in (netinet/in.h): port and address in network order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrIn
    {
        public ushort Family;
        public ushort PortBigEndian;
        public uint AddressBigEndian;
        public ulong Zero;
    }

    /// <summary>struct timeval (sys/time.h) on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int bind(SafeFileDescriptor fd, void* addr, int addrlen);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int setsockopt(SafeFileDescriptor fd, int level, int optname, void* optval, int optlen);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint sendto(SafeFileDescriptor fd, byte* buf, nuint len, int flags, void* addr, int addrlen);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint recv(SafeFileDescriptor fd, byte* buf, nuint len, int flags);

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial nint strerror_native(int errnum);

    public static string StrError(int errno) => Marshal.PtrToStringUTF8(strerror_native(errno)) ?? $"errno {errno}";

    public static void SetInt(SafeFileDescriptor fd, int level, int name, int value, string what)
    {
        if (setsockopt(fd, level, name, &value, sizeof(int)) != 0)
            throw new KernelException(what, Marshal.GetLastPInvokeError());
    }
}

/// <summary>A failed kernel operation, carrying the operation and errno.</summary>
public sealed class KernelException : Exception
{
    public KernelException(string operation, int errno, string? hint = null)
        : base($"{operation} failed: {Libc.StrError(errno)} (errno {errno}){(hint is null ? "" : ". " + hint)}")
    {
        Operation = operation;
        Errno = errno;
    }

    public string Operation { get; }
    public int Errno { get; }
}
