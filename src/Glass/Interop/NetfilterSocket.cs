using System.Runtime.InteropServices;
using static Glass.Interop.NfQueueMessages;

namespace Glass.Interop;

/// <summary>Handed each message of a dump; the span is valid only during the call.</summary>
internal delegate void NetlinkMessageHandler(ReadOnlySpan<byte> message);

/// <summary>
/// A NETLINK_NETFILTER socket for requests (with their acknowledgements and dumps) or, bound to
/// multicast groups, for events. Every request goes through <see cref="Execute"/> or
/// <see cref="Dump"/>, which number it and match the answers by sequence number. Owns its
/// descriptor; one thread at a time.
/// </summary>
internal sealed unsafe class NetfilterSocket : IDisposable
{
    // How long Execute waits for its acknowledgement, over as many receive timeouts as that takes.
    private const int AckTimeoutMs = 5000;

    private readonly SafeFileDescriptor _fd;
    private readonly byte[] _buffer = new byte[256 * 1024];
    private uint _seq;

    private NetfilterSocket(SafeFileDescriptor fd) => _fd = fd;

    /// <summary>
    /// Opens a socket; <paramref name="groups"/> is the nl_groups bit mask of event groups to join.
    /// With <paramref name="noEnobufs"/> an overrun drops messages silently rather than failing recv.
    /// </summary>
    public static NetfilterSocket Open(uint groups = 0, int receiveBuffer = 1 << 20, int receiveTimeoutMs = 1000, bool noEnobufs = false)
    {
        var raw = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, NETLINK_NETFILTER);
        if (raw < 0)
            throw new KernelException("socket(AF_NETLINK, NETLINK_NETFILTER)", Marshal.GetLastPInvokeError(), "The translator needs root (CAP_NET_ADMIN).");
        var sock = new NetfilterSocket(new SafeFileDescriptor(raw));
        try
        {
            // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups; }
            Span<byte> addr = stackalloc byte[12];
            addr.Clear();
            MemoryMarshal.Write(addr, (ushort)Libc.AF_NETLINK);
            MemoryMarshal.Write(addr.Slice(8), in groups);
            fixed (byte* a = addr)
            {
                if (Libc.bind(sock._fd, a, addr.Length) != 0)
                    throw new KernelException("bind(netlink)", Marshal.GetLastPInvokeError());
            }
            try
            {
                Libc.SetInt(sock._fd, Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, receiveBuffer, "setsockopt(SO_RCVBUFFORCE)");
            }
            catch (KernelException)
            {
                Libc.SetInt(sock._fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, receiveBuffer, "setsockopt(SO_RCVBUF)");
            }
            if (noEnobufs)
                Libc.SetInt(sock._fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, "setsockopt(NETLINK_NO_ENOBUFS)");
            var tv = new Libc.TimeVal { Seconds = receiveTimeoutMs / 1000, Microseconds = receiveTimeoutMs % 1000 * 1000 };
            if (Libc.setsockopt(sock._fd, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, &tv, sizeof(Libc.TimeVal)) != 0)
                throw new KernelException("setsockopt(SO_RCVTIMEO)", Marshal.GetLastPInvokeError());
            return sock;
        }
        catch
        {
            sock.Dispose();
            throw;
        }
    }

    /// <summary>The descriptor, for batched receives (recvmmsg); this instance still owns it.</summary>
    public SafeFileDescriptor Descriptor => _fd;

    /// <summary>The sequence number for the next request.</summary>
    public uint NextSequence() => ++_seq;

    /// <summary>
    /// Sends a request that asks for an acknowledgement (NLM_F_ACK) and waits for it; returns 0 or
    /// the errno the kernel answered (ETIMEDOUT when it did not answer within 5 s). Messages the
    /// kernel answers with before the acknowledgement (a GET's entry) go to <paramref name="answer"/>.
    /// </summary>
    public int Execute(ReadOnlySpan<byte> request, NetlinkMessageHandler? answer = null)
    {
        var seq = MemoryMarshal.Read<uint>(request.Slice(8));
        var errno = Send(request);
        if (errno != 0)
            return errno;
        var deadline = Environment.TickCount64 + AckTimeoutMs;
        while (true)
        {
            var n = Receive(_buffer);
            if (n == 0 && Environment.TickCount64 >= deadline)
                return Libc.ETIMEDOUT;
            if (n <= 0)
                continue;
            var span = _buffer.AsSpan(0, n);
            while (TryReadMessage(span, out var type, out var msg, out var consumed))
            {
                span = span.Slice(consumed);
                if (MemoryMarshal.Read<uint>(msg.Slice(8)) != seq)
                    continue;
                if (type == NLMSG_ERROR && TryReadError(msg, out var e))
                    return e;
                if (type != NLMSG_ERROR)
                    answer?.Invoke(msg);
            }
        }
    }

    /// <summary>Sends a dump request and hands every part to <paramref name="handler"/>; returns 0 or an errno.</summary>
    public int Dump(ReadOnlySpan<byte> request, NetlinkMessageHandler handler)
    {
        var seq = MemoryMarshal.Read<uint>(request.Slice(8));
        var errno = Send(request);
        if (errno != 0)
            return errno;
        while (true)
        {
            var n = Receive(_buffer);
            if (n == 0)
                return Libc.ETIMEDOUT;
            if (n < 0)
                return Libc.ENOBUFS; // parts were lost: the caller may dump again
            var span = _buffer.AsSpan(0, n);
            while (TryReadMessage(span, out var type, out var msg, out var consumed))
            {
                span = span.Slice(consumed);
                if (MemoryMarshal.Read<uint>(msg.Slice(8)) != seq)
                    continue;
                if (type == NLMSG_DONE)
                    return 0;
                if (type == NLMSG_ERROR)
                    return TryReadError(msg, out var e) ? e : Libc.EINVAL;
                handler(msg);
            }
        }
    }

    /// <summary>Sends one message to the kernel; returns 0 or the errno.</summary>
    public int Send(ReadOnlySpan<byte> message)
    {
        Span<byte> kernel = stackalloc byte[12];
        kernel.Clear();
        MemoryMarshal.Write(kernel, (ushort)Libc.AF_NETLINK);
        fixed (byte* m = message)
        fixed (byte* k = kernel)
        {
            while (Libc.sendto(_fd, m, (nuint)message.Length, 0, k, kernel.Length) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR)
                    return errno;
            }
        }
        return 0;
    }

    /// <summary>
    /// Receives one datagram: its length, 0 when the timeout passed (or nothing is ready with
    /// <paramref name="dontWait"/>), -1 when the kernel dropped messages for want of buffer
    /// (ENOBUFS: events were lost). Throws on anything else.
    /// </summary>
    public int Receive(Span<byte> buffer, bool dontWait = false)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.recv(_fd, p, (nuint)buffer.Length, dontWait ? Libc.MSG_DONTWAIT : 0);
                if (n >= 0)
                    return (int)n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                    continue;
                if (errno == Libc.EAGAIN)
                    return 0;
                if (errno == Libc.ENOBUFS)
                    return -1;
                throw new KernelException("recv(NETLINK_NETFILTER)", errno);
            }
        }
    }

    public void Dispose() => _fd.Dispose();
}
