using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Glass.Translator;

namespace Glass.Interop;

/// <summary>
/// A raw IPv4 socket (IPPROTO_RAW, so IP_HDRINCL is implied): sends complete IPv4 datagrams that the
/// translator rewrote or built. Sent packets pass OUTPUT, not INPUT, so they never re-enter the queue.
/// The packet loop's thread queues its sends (<see cref="BatchOnThisThread"/>) and sends them with
/// one sendmmsg per batch (<see cref="Flush"/>); any other thread sends at once.
/// </summary>
internal sealed unsafe class RawIpv4Socket : IPacketSender, IDisposable
{
    // Up to jumbo frames queue; anything longer (the kernel refuses it above the MTU anyway) goes at once.
    private const int BatchSlots = 64, SlotSize = 9216;

    private readonly SafeFileDescriptor _fd;
    private readonly SendBatch _batch = new(BatchSlots, SlotSize);
    private int _batchThread = -1;

    public long SendErrors;
    public int LastErrno;

    private RawIpv4Socket(SafeFileDescriptor fd) => _fd = fd;

    public static RawIpv4Socket Open()
    {
        var raw = Libc.socket(Libc.AF_INET, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, Libc.IPPROTO_RAW);
        if (raw < 0)
            throw new KernelException("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", Marshal.GetLastPInvokeError(), "The translator needs root (CAP_NET_RAW).");
        var fd = new SafeFileDescriptor(raw);
        try
        {
            Libc.SetInt(fd, Libc.SOL_SOCKET, Libc.SO_SNDBUFFORCE, 4 << 20, "setsockopt(SO_SNDBUFFORCE)");
        }
        catch (KernelException)
        {
            // Only a deeper buffer is lost.
        }
        return new RawIpv4Socket(fd);
    }

    /// <summary>From now on, sends from the calling thread are queued until it calls <see cref="Flush"/>.</summary>
    public void BatchOnThisThread() => _batchThread = Environment.CurrentManagedThreadId;

    /// <summary>
    /// Sends, or on the batching thread queues, one datagram. A queued datagram counts as sent:
    /// should the kernel refuse it at <see cref="Flush"/>, it is counted in <see cref="SendErrors"/>.
    /// </summary>
    public bool Send(ReadOnlySpan<byte> packet, uint destination)
    {
        if (Environment.CurrentManagedThreadId == _batchThread)
        {
            if (_batch.IsFull)
                Flush();
            if (_batch.TryAdd(packet, destination))
                return true;
            Flush(); // too long to queue: keep the order, then send it alone
        }
        var addr = new Libc.SockAddrIn
        {
            Family = Libc.AF_INET,
            AddressBigEndian = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(destination) : destination,
        };
        fixed (byte* p = packet)
        {
            if (Libc.sendto(_fd, p, (nuint)packet.Length, 0, &addr, sizeof(Libc.SockAddrIn)) >= 0)
                return true;
        }
        // A full buffer or an unreachable peer loses this one packet; TCP retransmits end to end.
        LastErrno = Marshal.GetLastPInvokeError();
        SendErrors++;
        return false;
    }

    /// <summary>Sends what the batching thread queued (one sendmmsg for the lot, as a rule).</summary>
    public void Flush()
    {
        if (_batch.Count == 0)
            return;
        var refused = _batch.Flush(_fd, out var errno);
        if (refused > 0)
        {
            LastErrno = errno;
            SendErrors += refused;
        }
    }

    public void Dispose() => _fd.Dispose();
}
