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
