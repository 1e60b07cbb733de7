using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// What the splice engine needs of one IPv4+TCP packet: header fields plus offsets into the packet bytes.
/// Layouts: <see cref="Ipv4Layout"/> and <see cref="TcpLayout"/>.
/// </summary>
public readonly struct TcpPacket
{
    public uint SourceAddress { get; init; }
    public uint DestinationAddress { get; init; }
    /// <summary>IPv4 header length in bytes, 20..60.</summary>
    public int IpHeaderLength { get; init; }
    /// <summary>IPv4 total length; at most the span length, at least IpHeaderLength + 20.</summary>
    public int TotalLength { get; init; }
    /// <summary>First fragment of a fragmented datagram (MF set); non-first fragments never parse.</summary>
    public bool IsFragment { get; init; }
    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    public uint Sequence { get; init; }
    public uint Acknowledgment { get; init; }
    public TcpFlags Flags { get; init; }
    public ushort Window { get; init; }
    /// <summary>TCP data offset in bytes, 20..60, within TotalLength.</summary>
    public int TcpHeaderLength { get; init; }
    public int PayloadLength { get; init; }

    public int TcpOffset => IpHeaderLength;
    public int OptionsOffset => IpHeaderLength + TcpLayout.MinHeaderLength;
    public int OptionsLength => TcpHeaderLength - TcpLayout.MinHeaderLength;
    public int PayloadOffset => IpHeaderLength + TcpHeaderLength;

    /// <summary>Sequence space consumed: payload plus one each for SYN and FIN.</summary>
    public uint SegmentLength =>
        (uint)PayloadLength
        + ((Flags & TcpFlags.Syn) != 0 ? 1u : 0u)
        + ((Flags & TcpFlags.Fin) != 0 ? 1u : 0u);

    /// <summary>
    /// Parses an IPv4 packet carrying a TCP header. Bytes past the IPv4 total length (link padding) are ignored.
    /// Never throws and never allocates; false on anything short or malformed.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> packet, out TcpPacket tcp)
    {
        tcp = default;

        if (packet.Length < Ipv4Layout.MinHeaderLength)
            return false;
        byte versionIhl = packet[Ipv4Layout.VersionIhl];
        if (versionIhl >> 4 != Ipv4Layout.Version)
            return false;
        int ihl = (versionIhl & 0x0F) * 4;
        if (ihl < Ipv4Layout.MinHeaderLength)
            return false;

        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[Ipv4Layout.TotalLength..]);
        // Also guarantees the IP header itself (ihl bytes) and a fixed TCP header lie within the span.
        if (totalLength > packet.Length || totalLength < ihl + TcpLayout.MinHeaderLength)
            return false;
        if (packet[Ipv4Layout.Protocol] != Ipv4Layout.ProtocolTcp)
            return false;

        ushort flagsFragment = BinaryPrimitives.ReadUInt16BigEndian(packet[Ipv4Layout.FlagsFragment..]);
        // Later fragments carry no TCP header; what looks like one is payload.
        if ((flagsFragment & Ipv4Layout.FragmentOffsetMask) != 0)
            return false;

        ReadOnlySpan<byte> segment = packet[ihl..totalLength];
        if (segment.Length < TcpLayout.MinHeaderLength)
            return false;
        int tcpHeaderLength = (segment[TcpLayout.DataOffset] >> 4) * 4;
        if (tcpHeaderLength < TcpLayout.MinHeaderLength || tcpHeaderLength > segment.Length)
            return false;

        tcp = new TcpPacket
        {
            SourceAddress = BinaryPrimitives.ReadUInt32BigEndian(packet[Ipv4Layout.SourceAddress..]),
            DestinationAddress = BinaryPrimitives.ReadUInt32BigEndian(packet[Ipv4Layout.DestinationAddress..]),
            IpHeaderLength = ihl,
            TotalLength = totalLength,
            IsFragment = (flagsFragment & Ipv4Layout.MoreFragments) != 0,
            SourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment[TcpLayout.SourcePort..]),
            DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[TcpLayout.DestinationPort..]),
            Sequence = BinaryPrimitives.ReadUInt32BigEndian(segment[TcpLayout.Sequence..]),
            Acknowledgment = BinaryPrimitives.ReadUInt32BigEndian(segment[TcpLayout.Acknowledgment..]),
            Flags = (TcpFlags)segment[TcpLayout.Flags],
            Window = BinaryPrimitives.ReadUInt16BigEndian(segment[TcpLayout.Window..]),
            TcpHeaderLength = tcpHeaderLength,
            PayloadLength = segment.Length - tcpHeaderLength,
        };
        return true;
    }
}
