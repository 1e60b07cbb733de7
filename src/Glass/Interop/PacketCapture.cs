using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// A packet socket (AF_PACKET, SOCK_DGRAM, ETH_P_ALL) on every interface of the namespace: a copy of
/// each frame sent or received, without its link header, taken before netfilter sees an incoming
/// one. ETH_P_ALL, because only such taps see what the namespace sends or forwards; the caller
/// skips what does not parse as IPv4.
/// Test tools use it to learn a live flow's sequence numbers, as an on-path attacker would.
/// </summary>
/// <remarks>The capture owns its descriptor.</remarks>
internal sealed unsafe class PacketCapture : IDisposable
{
    private readonly SafeFileDescriptor _fd;

    private PacketCapture(SafeFileDescriptor fd) => _fd = fd;

    public static PacketCapture Open()
    {
        // The protocol is the ethertype in network order (packet(7)).
        var protocol = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(Libc.ETH_P_ALL) : Libc.ETH_P_ALL;
        var fd = Libc.socket(Libc.AF_PACKET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, protocol);
        if (fd < 0)
            throw new KernelException("socket(AF_PACKET, SOCK_DGRAM, ETH_P_ALL)", Marshal.GetLastPInvokeError(), "A packet capture needs root (CAP_NET_RAW).");
        return new PacketCapture(new SafeFileDescriptor(fd));
    }

    /// <summary>The next datagram, or 0 when none is waiting; a negative errno on failure.</summary>
    public int TryReceive(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var n = Libc.recv(_fd, p, (nuint)buffer.Length, Libc.MSG_DONTWAIT);
            if (n >= 0)
                return (int)n;
            var errno = Marshal.GetLastPInvokeError();
            return errno is Libc.EAGAIN or Libc.EINTR ? 0 : -errno;
        }
    }

    public void Dispose() => _fd.Dispose();
}
