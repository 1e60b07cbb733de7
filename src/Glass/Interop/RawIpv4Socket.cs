using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Glass.Translator;

namespace Glass.Interop;

/// <summary>
/// A raw IPv4 socket (IPPROTO_RAW, so IP_HDRINCL is implied): sends complete IPv4 datagrams that the
/// translator rewrote or built. Sent packets pass OUTPUT, not INPUT, so they never re-enter the queue.
/// </summary>
internal sealed unsafe class RawIpv4Socket : IPacketSender, IDisposable
{
    private readonly SafeFileDescriptor _fd;

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

    public bool Send(ReadOnlySpan<byte> packet, uint destination)
    {
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

    public void Dispose() => _fd.Dispose();
}
