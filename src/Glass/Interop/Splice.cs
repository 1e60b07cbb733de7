using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// splice(2) and pipe2(2) (fcntl.h, linux/fcntl.h): moving bytes from one socket to another
/// through a kernel pipe, without copying them through user space.
/// </summary>
internal static unsafe partial class Splice
{
    public const uint SPLICE_F_MOVE = 1;
    public const uint SPLICE_F_NONBLOCK = 2;
    public const int O_CLOEXEC = 0x80000;
    public const int F_SETPIPE_SZ = 1031;

    [LibraryImport("libc", EntryPoint = "splice", SetLastError = true)]
    private static partial nint splice_native(int fdIn, nint offIn, int fdOut, nint offOut, nuint len, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int pipe2(int* fds, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    /// <summary>Creates a pipe (both ends owned by the caller) of about <paramref name="size"/> bytes.</summary>
    public static (SafeFileDescriptor Read, SafeFileDescriptor Write) CreatePipe(int size)
    {
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            throw new KernelException("pipe2", Marshal.GetLastPInvokeError());
        fcntl(fds[1], F_SETPIPE_SZ, size); // best effort: the default 64 KiB also works
        return (new SafeFileDescriptor(fds[0]), new SafeFileDescriptor(fds[1]));
    }

    /// <summary>
    /// Moves up to <paramref name="length"/> bytes. Returns -1 when a non-blocking socket is not
    /// ready (EAGAIN: .NET keeps its sockets non-blocking), retries EINTR, throws on errors.
    /// </summary>
    public static int Move(int from, int to, int length, uint flags)
    {
        while (true)
        {
            var n = splice_native(from, 0, to, 0, (nuint)length, flags);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EAGAIN)
                return -1;
            if (errno != Libc.EINTR)
                throw new System.Net.Sockets.SocketException(errno == 104 ? (int)System.Net.Sockets.SocketError.ConnectionReset : errno);
        }
    }
}
