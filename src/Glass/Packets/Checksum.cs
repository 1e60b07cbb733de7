using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// RFC 1071 Internet checksum. The TCP checksum also covers the IPv4 pseudo-header (RFC 9293 3.1):
/// <code>
/// +--------+--------+--------+--------+
/// |           Source Address          |
/// +--------+--------+--------+--------+
/// |         Destination Address       |
/// +--------+--------+--------+--------+
/// |  zero  |  PTCL  |    TCP Length   |
/// +--------+--------+--------+--------+
/// </code>
/// </summary>
public static class Checksum
{
    /// <summary>Folded, complemented checksum over <paramref name="data"/>.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => (ushort)~Fold(Accumulate(data, 0));

    /// <summary>
    /// TCP checksum with the IPv4 pseudo-header. The segment's checksum field is summed as-is:
    /// zero it to compute, leave it to verify (a correct segment yields 0).
    /// </summary>
    public static ushort ComputeTcp(uint src, uint dst, ReadOnlySpan<byte> tcpSegment)
    {
        ulong sum = PseudoHeaderSum(src, dst, tcpSegment.Length);
        return (ushort)~Fold(Accumulate(tcpSegment, sum));
    }

    /// <summary>True when the IPv4 header starting the span (its IHL bytes) has a correct header checksum.</summary>
    public static bool VerifyIpv4Header(ReadOnlySpan<byte> ipHeader)
    {
        if (ipHeader.Length < Ipv4Layout.MinHeaderLength)
            return false;
        int ihl = (ipHeader[Ipv4Layout.VersionIhl] & 0x0F) * 4;
        if (ihl < Ipv4Layout.MinHeaderLength || ihl > ipHeader.Length)
            return false;
        return Compute(ipHeader[..ihl]) == 0;
    }

    /// <summary>
    /// True when the TCP checksum of a parsed packet is correct. A first fragment (IsFragment) cannot be
    /// verified on its own, since the checksum covers the whole datagram.
    /// </summary>
    public static bool VerifyTcp(ReadOnlySpan<byte> packet, in TcpPacket tcp)
    {
        if (tcp.TotalLength > packet.Length || tcp.TcpOffset < Ipv4Layout.MinHeaderLength
            || tcp.TotalLength - tcp.TcpOffset < TcpLayout.MinHeaderLength)
            return false;
        return ComputeTcp(tcp.SourceAddress, tcp.DestinationAddress, packet[tcp.TcpOffset..tcp.TotalLength]) == 0;
    }

    /// <summary>
    /// What a CHECKSUM_PARTIAL packet carries in its TCP checksum field: the folded pseudo-header
    /// sum, not complemented (the kernel's ~tcp_v4_check(len, saddr, daddr, 0)). Never 0: the
    /// protocol word alone makes the sum nonzero, and a nonzero sum folds to 1..0xFFFF.
    /// </summary>
    public static ushort PartialPseudoHeader(uint src, uint dst, int tcpLength) => Fold(PseudoHeaderSum(src, dst, tcpLength));

    /// <summary>
    /// Finishes a partial TCP checksum as the kernel does on the way out (skb_checksum_help): the
    /// complemented sum over the segment, whose checksum field holds the pseudo-header sum.
    /// </summary>
    public static void CompletePartialTcp(Span<byte> packet, in TcpPacket tcp)
    {
        var segment = packet[tcp.TcpOffset..tcp.TotalLength];
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.Checksum..], (ushort)~Fold(Accumulate(segment, 0)));
    }

    /// <summary>Unfolded sum of the pseudo-header words.</summary>
    internal static ulong PseudoHeaderSum(uint src, uint dst, int tcpLength) =>
        (ulong)(src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        + Ipv4Layout.ProtocolTcp + (uint)tcpLength;

    /// <summary>
    /// Adds the big-endian 16-bit words of <paramref name="data"/> to <paramref name="sum"/>, odd tail byte
    /// padded with zero. Wide reads are fine: 2^16 = 1 (mod 0xFFFF), so 32-bit chunks fold to the same sum.
    /// </summary>
    internal static ulong Accumulate(ReadOnlySpan<byte> data, ulong sum)
    {
        while (data.Length >= 8)
        {
            ulong word = BinaryPrimitives.ReadUInt64BigEndian(data);
            sum += (word >> 32) + (word & 0xFFFF_FFFF);
            data = data[8..];
        }
        if (data.Length >= 4)
        {
            sum += BinaryPrimitives.ReadUInt32BigEndian(data);
            data = data[4..];
        }
        if (data.Length >= 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data);
            data = data[2..];
        }
        if (data.Length == 1)
            sum += (uint)data[0] << 8;
        return sum;
    }

    /// <summary>End-around-carry fold to 16 bits. Nonzero input never folds to 0 (one's complement -0 is 0xFFFF).</summary>
    internal static ushort Fold(ulong sum)
    {
        while (sum > 0xFFFF)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }
}
