using System.Buffers.Binary;
using Glass.Translator;

namespace Glass.Interop;

/// <summary>
/// struct virtio_net_hdr (linux/virtio_net.h): what a tun device opened with IFF_VNET_HDR reads in
/// front of every packet, telling the kernel which checksum to finish and how to cut a GSO packet.
/// Fields are little-endian once TUNSETVNETLE is set (drivers/net/tun_vnet.h).
/// <code>
///  0       1       2               4               6               8              10
/// +-------+-------+---------------+---------------+---------------+---------------+
/// | flags |gso_typ|    hdr_len    |   gso_size    |  csum_start   |  csum_offset  |
/// +-------+-------+---------------+---------------+---------------+---------------+
/// </code>
/// For IFF_TUN (no link-layer header) csum_start counts from the IPv4 header.
/// </summary>
internal static class VirtioNetHeader
{
    public const int Length = 10;

    private const int Flags = 0, GsoType = 1, HdrLen = 2, GsoSize = 4, CsumStart = 6, CsumOffset = 8;

    // linux/virtio_net.h
    public const byte VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
    public const byte VIRTIO_NET_HDR_F_DATA_VALID = 2;
    public const byte VIRTIO_NET_HDR_GSO_NONE = 0;
    public const byte VIRTIO_NET_HDR_GSO_TCPV4 = 1;
    public const byte VIRTIO_NET_HDR_GSO_ECN = 0x80;

    // The TCP checksum's offset in its header (offsetof(struct tcphdr, check)), which the kernel
    // insists on for TCP GSO packets (__virtio_net_hdr_to_skb).
    public const ushort TcpChecksumOffset = 16;

    public readonly record struct Fields(byte Flags, byte GsoType, ushort HdrLen, ushort GsoSize, ushort CsumStart, ushort CsumOffset);

    public static void Write(Span<byte> b, in Fields f)
    {
        b[Flags] = f.Flags;
        b[GsoType] = f.GsoType;
        BinaryPrimitives.WriteUInt16LittleEndian(b[HdrLen..], f.HdrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(b[GsoSize..], f.GsoSize);
        BinaryPrimitives.WriteUInt16LittleEndian(b[CsumStart..], f.CsumStart);
        BinaryPrimitives.WriteUInt16LittleEndian(b[CsumOffset..], f.CsumOffset);
    }

    public static Fields Read(ReadOnlySpan<byte> b) => new(b[Flags], b[GsoType],
        BinaryPrimitives.ReadUInt16LittleEndian(b[HdrLen..]), BinaryPrimitives.ReadUInt16LittleEndian(b[GsoSize..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[CsumStart..]), BinaryPrimitives.ReadUInt16LittleEndian(b[CsumOffset..]));

    /// <summary>
    /// The header for an IPv4 packet the engine sends: all zero for a finished packet; for a partial
    /// TCP checksum, NEEDS_CSUM from the TCP header; for a super-packet also GSO_TCPV4 with the
    /// segment size (and GSO_ECN when it carries CWR, as the kernel's own TCP marks such packets,
    /// so that CWR stays on the first segment only). False when the offload asks for something a
    /// packet this short or not TCP cannot carry.
    /// </summary>
    public static bool TryCreate(ReadOnlySpan<byte> packet, SendOffload offload, out Fields fields)
    {
        fields = default;
        if (offload.IsNone)
            return true;
        if (packet.Length < 20 || packet[9] != 6)
            return false;
        var ihl = (packet[0] & 0x0F) * 4;
        if (ihl < 20 || packet.Length < ihl + 20)
            return false;
        var thl = (packet[ihl + 12] >> 4) * 4;
        if (thl < 20 || packet.Length < ihl + thl)
            return false;
        if (!offload.ChecksumPartial)
            return false; // the kernel cuts only packets whose checksum it finishes
        byte gso = VIRTIO_NET_HDR_GSO_NONE;
        if (offload.SegmentSize > 0)
        {
            gso = VIRTIO_NET_HDR_GSO_TCPV4;
            if ((packet[ihl + 13] & 0x80) != 0) // CWR
                gso |= VIRTIO_NET_HDR_GSO_ECN;
        }
        fields = new Fields(VIRTIO_NET_HDR_F_NEEDS_CSUM, gso, (ushort)(ihl + thl), offload.SegmentSize, (ushort)ihl, TcpChecksumOffset);
        return true;
    }
}
