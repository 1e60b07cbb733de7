using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// Rewrites addresses and ports in place with incremental checksum updates (RFC 1624 eqn. 3:
/// HC' = ~(~HC + ~m + m')). A sender's full computation never yields 0xFFFF, so ~HC is nonzero, the folded
/// sum is never +0, and the result equals a from-scratch recomputation bit for bit. A wrong checksum stays
/// wrong by the same amount, so the receiver still drops the packet.
/// </summary>
public static class TcpRewriter
{
    public static void Rewrite(Span<byte> packet, in TcpPacket tcp, uint newSource, ushort newSourcePort,
        uint newDestination, ushort newDestinationPort)
    {
        Span<byte> ip = packet[..tcp.IpHeaderLength];
        Span<byte> header = packet.Slice(tcp.TcpOffset, TcpLayout.MinHeaderLength);

        uint oldSource = BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Layout.SourceAddress..]);
        uint oldDestination = BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Layout.DestinationAddress..]);
        ushort oldSourcePort = BinaryPrimitives.ReadUInt16BigEndian(header[TcpLayout.SourcePort..]);
        ushort oldDestinationPort = BinaryPrimitives.ReadUInt16BigEndian(header[TcpLayout.DestinationPort..]);

        // The addresses are in both the IP header and the TCP pseudo-header; the ports only in TCP.
        ulong addressDelta = Delta32(oldSource, newSource) + Delta32(oldDestination, newDestination);
        ulong portDelta = Delta16(oldSourcePort, newSourcePort) + Delta16(oldDestinationPort, newDestinationPort);

        Update(ip[Ipv4Layout.HeaderChecksum..], addressDelta);
        Update(header[TcpLayout.Checksum..], addressDelta + portDelta);

        WriteAddressesAndPorts(ip, header, newSource, newSourcePort, newDestination, newDestinationPort);
    }

    /// <summary>
    /// The same rewrite for a packet whose TCP checksum the kernel has yet to compute
    /// (CHECKSUM_PARTIAL). Its checksum field holds the folded pseudo-header sum, not complemented,
    /// so the address change enters it without the complements (S' = S + ~m + m', as the kernel's
    /// inet_proto_csum_replace4 does); the ports are data the kernel sums when it finishes the
    /// checksum, so they stay out of it. The IPv4 header checksum is complete and is updated as usual.
    /// </summary>
    public static void RewritePartial(Span<byte> packet, in TcpPacket tcp, uint newSource, ushort newSourcePort,
        uint newDestination, ushort newDestinationPort)
    {
        Span<byte> ip = packet[..tcp.IpHeaderLength];
        Span<byte> header = packet.Slice(tcp.TcpOffset, TcpLayout.MinHeaderLength);
        ulong addressDelta = Delta32(BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Layout.SourceAddress..]), newSource)
            + Delta32(BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Layout.DestinationAddress..]), newDestination);

        Update(ip[Ipv4Layout.HeaderChecksum..], addressDelta);
        ushort partial = BinaryPrimitives.ReadUInt16BigEndian(header[TcpLayout.Checksum..]);
        BinaryPrimitives.WriteUInt16BigEndian(header[TcpLayout.Checksum..], Checksum.Fold(partial + addressDelta));

        WriteAddressesAndPorts(ip, header, newSource, newSourcePort, newDestination, newDestinationPort);
    }

    /// <summary>
    /// Rewrites a GSO super-packet whose TCP checksum field is not a partial sum (a packet GRO
    /// merged, its segments verified on the way in: the field is the first segment's) and leaves
    /// it partial: the pseudo-header sum of the new addresses over the whole TCP length, which is
    /// what the kernel writes into such a packet itself before it cuts it (tcp4_gso_segment).
    /// </summary>
    public static void RewriteToPartial(Span<byte> packet, in TcpPacket tcp, uint newSource, ushort newSourcePort,
        uint newDestination, ushort newDestinationPort)
    {
        Span<byte> ip = packet[..tcp.IpHeaderLength];
        Span<byte> header = packet.Slice(tcp.TcpOffset, TcpLayout.MinHeaderLength);
        ulong addressDelta = Delta32(BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Layout.SourceAddress..]), newSource)
            + Delta32(BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Layout.DestinationAddress..]), newDestination);
        Update(ip[Ipv4Layout.HeaderChecksum..], addressDelta);
        BinaryPrimitives.WriteUInt16BigEndian(header[TcpLayout.Checksum..],
            Checksum.PartialPseudoHeader(newSource, newDestination, tcp.TotalLength - tcp.TcpOffset));
        WriteAddressesAndPorts(ip, header, newSource, newSourcePort, newDestination, newDestinationPort);
    }

    private static void WriteAddressesAndPorts(Span<byte> ip, Span<byte> header, uint newSource, ushort newSourcePort,
        uint newDestination, ushort newDestinationPort)
    {
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Layout.SourceAddress..], newSource);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Layout.DestinationAddress..], newDestination);
        BinaryPrimitives.WriteUInt16BigEndian(header[TcpLayout.SourcePort..], newSourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header[TcpLayout.DestinationPort..], newDestinationPort);
    }

    internal static void Update(Span<byte> checksumField, ulong delta)
    {
        ushort old = BinaryPrimitives.ReadUInt16BigEndian(checksumField);
        ulong sum = (ushort)~old + delta;
        ushort result = (ushort)~Checksum.Fold(sum);
        // Only reachable from HC = 0xFFFF (the other zero) with all-ones old and all-zero new fields;
        // a full computation over non-zero data never yields 0xFFFF, so write the equivalent 0x0000.
        if (result == 0xFFFF)
            result = 0;
        BinaryPrimitives.WriteUInt16BigEndian(checksumField, result);
    }

    /// <summary>~m + m' for one 16-bit word.</summary>
    internal static ulong Delta16(ushort oldValue, ushort newValue) => (ushort)~oldValue + (ulong)newValue;

    /// <summary>~m + m' for both 16-bit halves of a 32-bit field.</summary>
    internal static ulong Delta32(uint oldValue, uint newValue) =>
        Delta16((ushort)(oldValue >> 16), (ushort)(newValue >> 16)) + Delta16((ushort)oldValue, (ushort)newValue);
}
