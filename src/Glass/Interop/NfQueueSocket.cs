using System.Runtime.InteropServices;
using static Glass.Interop.NfQueueMessages;

namespace Glass.Interop;

/// <summary>
/// A netlink socket bound to one NFQUEUE queue: receives queued IPv4 packets and returns verdicts.
/// Owns its descriptor; one reader thread at a time.
/// </summary>
internal sealed unsafe class NfQueueSocket : IDisposable
{
    // Large enough for a 64 KiB packet plus its netlink attributes.
    public const int ReceiveBufferSize = 70_000;

    private readonly SafeFileDescriptor _fd;
    private readonly byte[] _send = new byte[128];
    private uint _seq;

    public ushort Queue { get; }

    private NfQueueSocket(SafeFileDescriptor fd, ushort queue)
    {
        _fd = fd;
        Queue = queue;
    }

    /// <summary>
    /// Binds queue <paramref name="queue"/>. With <paramref name="gso"/> (NFQA_CFG_F_GSO) the kernel
    /// queues GSO super-packets whole and leaves partial checksums unfinished, instead of cutting
    /// each into MTU-sized segments and checksumming them first; only ask for it when whatever
    /// sends the packets on can hand such packets back to the kernel.
    /// </summary>
    public static NfQueueSocket Open(ushort queue, uint maxQueueLength = 4096, int receiveTimeoutMs = 200, bool gso = false)
    {
        var raw = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, NETLINK_NETFILTER);
        if (raw < 0)
            throw new KernelException("socket(AF_NETLINK, NETLINK_NETFILTER)", Marshal.GetLastPInvokeError(), "The translator needs root (CAP_NET_ADMIN).");
        var fd = new SafeFileDescriptor(raw);
        var sock = new NfQueueSocket(fd, queue);
        try
        {
            // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups; }
            Span<byte> addr = stackalloc byte[12];
            addr.Clear();
            MemoryMarshal.Write(addr, (ushort)Libc.AF_NETLINK);
            fixed (byte* a = addr)
            {
                if (Libc.bind(fd, a, addr.Length) != 0)
                    throw new KernelException("bind(netlink)", Marshal.GetLastPInvokeError());
            }
            sock.SetBuffers(gso ? 32 << 20 : 8 << 20);
            var tv = new Libc.TimeVal { Seconds = receiveTimeoutMs / 1000, Microseconds = receiveTimeoutMs % 1000 * 1000 };
            if (Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, &tv, sizeof(Libc.TimeVal)) != 0)
                throw new KernelException("setsockopt(SO_RCVTIMEO)", Marshal.GetLastPInvokeError());

            var b = sock._send.AsSpan();
            sock.Request(b.Slice(0, WriteConfigCommand(b, ++sock._seq, queue, NFQNL_CFG_CMD_BIND)), $"binding NFQUEUE {queue}");
            sock.Request(b.Slice(0, WriteConfigParams(b, ++sock._seq, queue, 0xFFFF, maxQueueLength)), $"configuring NFQUEUE {queue}");
            if (gso)
                sock.Request(b.Slice(0, WriteConfigFlags(b, ++sock._seq, queue, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO)), $"asking NFQUEUE {queue} for whole GSO packets");
            return sock;
        }
        catch
        {
            sock.Dispose();
            throw;
        }
    }

    // A deep kernel-side buffer absorbs bursts (whole GSO packets need more of it); NO_ENOBUFS keeps
    // an overrun from failing recv.
    private void SetBuffers(int size)
    {
        try
        {
            Libc.SetInt(_fd, Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, size, "setsockopt(SO_RCVBUFFORCE)");
        }
        catch (KernelException)
        {
            Libc.SetInt(_fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, size, "setsockopt(SO_RCVBUF)");
        }
        Libc.SetInt(_fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, "setsockopt(NETLINK_NO_ENOBUFS)");
    }

    /// <summary>Sends a request that asks for an acknowledgement and waits for it.</summary>
    private void Request(ReadOnlySpan<byte> message, string what)
    {
        Send(message, what);
        var buf = new byte[8192];
        var deadline = Environment.TickCount64 + 5000;
        while (Environment.TickCount64 < deadline)
        {
            var n = Receive(buf);
            if (n <= 0)
                continue;
            var span = buf.AsSpan(0, n);
            while (TryReadMessage(span, out var type, out var msg, out var consumed))
            {
                if (type == NLMSG_ERROR && TryReadError(msg, out var errno))
                {
                    if (errno == 0)
                        return;
                    var hint = errno == Libc.EBUSY || errno == Libc.EPERM
                        ? "Another process may already own this queue; pick another with -Queue."
                        : null;
                    throw new KernelException(what, errno, hint);
                }
                span = span.Slice(consumed);
            }
        }
        throw new TimeoutException($"The kernel did not acknowledge {what} within 5 s.");
    }

    private void Send(ReadOnlySpan<byte> message, string what)
    {
        // struct sockaddr_nl of the kernel: all zero but the family.
        Span<byte> kernel = stackalloc byte[12];
        kernel.Clear();
        MemoryMarshal.Write(kernel, (ushort)Libc.AF_NETLINK);
        fixed (byte* m = message)
        fixed (byte* k = kernel)
        {
            if (Libc.sendto(_fd, m, (nuint)message.Length, 0, k, kernel.Length) < 0)
                throw new KernelException(what, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>
    /// Receives one datagram. Returns its length, 0 when the receive timeout passed (or nothing is
    /// ready with <paramref name="dontWait"/>), and throws on any other failure.
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
                if (errno == Libc.EAGAIN || errno == Libc.ENOBUFS)
                    return 0;
                throw new KernelException("recv(NFQUEUE)", errno);
            }
        }
    }

    /// <summary>
    /// Receives up to a batch of queued packets with one recvmmsg (see <see cref="ReceiveBatch.Receive"/>):
    /// the number of datagrams, 0 when the receive timeout passed.
    /// </summary>
    public int Receive(ReceiveBatch batch, bool dontWait = false) => batch.Receive(_fd, dontWait);

    /// <summary>A verdict (NF_ACCEPT or NF_DROP) for one queued packet.</summary>
    public void Verdict(uint packetId, uint verdict) =>
        Send(_send.AsSpan(0, WriteVerdict(_send, ++_seq, Queue, packetId, verdict, batch: false)), "NFQUEUE verdict");

    /// <summary>Drops every queued packet whose id is at most <paramref name="lastId"/>.</summary>
    public void DropUpTo(uint lastId) =>
        Send(_send.AsSpan(0, WriteVerdict(_send, ++_seq, Queue, lastId, NF_DROP, batch: true)), "NFQUEUE verdict");

    public void Dispose()
    {
        if (!_fd.IsClosed)
        {
            try
            {
                Send(_send.AsSpan(0, WriteConfigCommand(_send, ++_seq, Queue, NFQNL_CFG_CMD_UNBIND)), "unbinding NFQUEUE");
            }
            catch (KernelException)
            {
                // Closing the socket unbinds the queue as well.
            }
        }
        _fd.Dispose();
    }
}
