using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// An ICMP "fragmentation needed" error (RFC 792 type 3 code 4, with RFC 1191's next-hop MTU)
/// that quotes a TCP segment: what the translator carries across a splice so that path MTU
/// discovery works end to end.
/// <code>
/// +--------------------+
/// | IPv4 header        |  outer, protocol 1
/// +------+------+------+---------------+
/// | type | code |   checksum           |  type 3, code 4
/// +------+------+----------------------+
/// |    unused (16)     | next-hop MTU  |
/// +--------------------+---------------+
/// | quoted IPv4 header + at least 8 bytes of its TCP header (ports, sequence number)
/// </code>
/// </summary>
public readonly struct IcmpTooBig
{
    private const int IcmpType = 0, IcmpChecksum = 2, IcmpMtu = 6, IcmpHeaderLength = 8;
    public const byte ProtocolIcmp = 1;

    public uint Source { get; init; }
    public uint Destination { get; init; }
    public int IpHeaderLength { get; init; }
    public int TotalLength { get; init; }
    public ushort Mtu { get; init; }
    /// <summary>Where the quoted IPv4 header starts.</summary>
    public int QuotedOffset { get; init; }
    public int QuotedHeaderLength { get; init; }
    /// <summary>Quoted bytes present from the quoted header on.</summary>
    public int QuotedLength { get; init; }
    public uint QuotedSource { get; init; }
    public uint QuotedDestination { get; init; }
    public ushort QuotedSourcePort { get; init; }
    public ushort QuotedDestinationPort { get; init; }
    public uint QuotedSequence { get; init; }

    public static bool TryParse(ReadOnlySpan<byte> packet, out IcmpTooBig m)
    {
        m = default;
        if (packet.Length < Ipv4Layout.MinHeaderLength || packet[Ipv4Layout.VersionIhl] >> 4 != Ipv4Layout.Version)
            return false;
        var ihl = (packet[Ipv4Layout.VersionIhl] & 0x0F) * 4;
        var total = BinaryPrimitives.ReadUInt16BigEndian(packet[Ipv4Layout.TotalLength..]);
        if (ihl < Ipv4Layout.MinHeaderLength || total < ihl || total > packet.Length
            || packet[Ipv4Layout.Protocol] != ProtocolIcmp
            || (BinaryPrimitives.ReadUInt16BigEndian(packet[Ipv4Layout.FlagsFragment..]) & (Ipv4Layout.MoreFragments | Ipv4Layout.FragmentOffsetMask)) != 0)
            return false;
        var icmp = packet[ihl..total];
        if (icmp.Length < IcmpHeaderLength + Ipv4Layout.MinHeaderLength + 8 || icmp[IcmpType] != 3 || icmp[IcmpType + 1] != 4)
            return false;
        var quoted = icmp[IcmpHeaderLength..];
        var qihl = (quoted[Ipv4Layout.VersionIhl] & 0x0F) * 4;
        if (quoted[Ipv4Layout.VersionIhl] >> 4 != Ipv4Layout.Version || qihl < Ipv4Layout.MinHeaderLength
            || quoted.Length < qihl + 8 || quoted[Ipv4Layout.Protocol] != Ipv4Layout.ProtocolTcp)
            return false;
        m = new IcmpTooBig
        {
            Source = BinaryPrimitives.ReadUInt32BigEndian(packet[Ipv4Layout.SourceAddress..]),
            Destination = BinaryPrimitives.ReadUInt32BigEndian(packet[Ipv4Layout.DestinationAddress..]),
            IpHeaderLength = ihl,
            TotalLength = total,
            Mtu = BinaryPrimitives.ReadUInt16BigEndian(icmp[IcmpMtu..]),
            QuotedOffset = ihl + IcmpHeaderLength,
            QuotedHeaderLength = qihl,
            QuotedLength = quoted.Length,
            QuotedSource = BinaryPrimitives.ReadUInt32BigEndian(quoted[Ipv4Layout.SourceAddress..]),
            QuotedDestination = BinaryPrimitives.ReadUInt32BigEndian(quoted[Ipv4Layout.DestinationAddress..]),
            QuotedSourcePort = BinaryPrimitives.ReadUInt16BigEndian(quoted[qihl..]),
            QuotedDestinationPort = BinaryPrimitives.ReadUInt16BigEndian(quoted[(qihl + 2)..]),
            QuotedSequence = BinaryPrimitives.ReadUInt32BigEndian(quoted[(qihl + 4)..]),
        };
        return true;
    }

    /// <summary>True when the ICMP checksum over the whole message is right.</summary>
    public static bool VerifyChecksum(ReadOnlySpan<byte> packet, in IcmpTooBig m) =>
        Checksum.Compute(packet[m.IpHeaderLength..m.TotalLength]) == 0;

    /// <summary>
    /// Readdresses the error and the segment it quotes, in place; the MTU stays, since relayed
    /// segments are the same size on both legs. Checksums: both IPv4 headers and the ICMP message
    /// recomputed; the quoted TCP checksum, when quoted, updated incrementally.
    /// </summary>
    public static void Rewrite(Span<byte> packet, in IcmpTooBig m, uint source, uint destination,
        uint quotedSource, ushort quotedSourcePort, uint quotedDestination, ushort quotedDestinationPort)
    {
        var ip = packet[..m.IpHeaderLength];
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Layout.SourceAddress..], source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Layout.DestinationAddress..], destination);
        WriteHeaderChecksum(ip);

        var quoted = packet.Slice(m.QuotedOffset, m.QuotedLength);
        var qip = quoted[..m.QuotedHeaderLength];
        var tcp = quoted[m.QuotedHeaderLength..];
        if (tcp.Length >= TcpLayout.Checksum + 2)
        {
            var delta = TcpRewriter.Delta32(m.QuotedSource, quotedSource) + TcpRewriter.Delta32(m.QuotedDestination, quotedDestination)
                + TcpRewriter.Delta16(m.QuotedSourcePort, quotedSourcePort) + TcpRewriter.Delta16(m.QuotedDestinationPort, quotedDestinationPort);
            TcpRewriter.Update(tcp[TcpLayout.Checksum..], delta);
        }
        BinaryPrimitives.WriteUInt32BigEndian(qip[Ipv4Layout.SourceAddress..], quotedSource);
        BinaryPrimitives.WriteUInt32BigEndian(qip[Ipv4Layout.DestinationAddress..], quotedDestination);
        WriteHeaderChecksum(qip);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpLayout.SourcePort..], quotedSourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpLayout.DestinationPort..], quotedDestinationPort);

        var icmp = packet[m.IpHeaderLength..m.TotalLength];
        BinaryPrimitives.WriteUInt16BigEndian(icmp[IcmpChecksum..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[IcmpChecksum..], Checksum.Compute(icmp));
    }

    private static void WriteHeaderChecksum(Span<byte> header)
    {
        BinaryPrimitives.WriteUInt16BigEndian(header[Ipv4Layout.HeaderChecksum..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(header[Ipv4Layout.HeaderChecksum..], Checksum.Compute(header));
    }
}
