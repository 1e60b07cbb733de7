using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>Writes complete IPv4+TCP control segments the router originates.</summary>
public static class TcpSegmentBuilder
{
    /// <summary>20 bytes IP + 40 bytes TCP: the fixed header plus the 20 option bytes of the fullest layout.</summary>
    public const int MaxSynAckLength = Ipv4Layout.MinHeaderLength + TcpLayout.MinHeaderLength + MaxSynAckOptionsLength;

    private const int MaxSynAckOptionsLength = 20; // MSS 4 + SACK/TS 12 + WS 4

    /// <summary>Length of a bare RST: 20 bytes IP + 20 bytes TCP.</summary>
    public const int RstLength = Ipv4Layout.MinHeaderLength + TcpLayout.MinHeaderLength;

    /// <summary>
    /// Writes an IPv4+TCP SYN-ACK without payload and returns its length. Options are laid out as Linux
    /// does (tcp_options_write), each group 4-byte aligned:
    /// <code>
    /// MSS:          | 2 | 4 | mss        |
    /// SACK+TS:      | 4 | 2 | 8 | 10 | TSval | TSecr |
    /// TS only:      | 1 | 1 | 8 | 10 | TSval | TSecr |
    /// SACK only:    | 1 | 1 | 4 | 2 |
    /// WS:           | 1 | 3 | 3 | shift |
    /// </code>
    /// </summary>
    public static int WriteSynAck(Span<byte> destination, uint source, ushort sourcePort, uint destinationAddr,
        ushort destinationPort, uint sequence, uint acknowledgment, ushort window, bool ece, in SynAckOptions options)
    {
        int optionsLength = SynAckOptionsLength(options);
        int tcpLength = TcpLayout.MinHeaderLength + optionsLength;
        int totalLength = Ipv4Layout.MinHeaderLength + tcpLength;
        if (destination.Length < totalLength)
            throw new ArgumentException($"SYN-ACK needs {totalLength} bytes, got {destination.Length}.", nameof(destination));

        Span<byte> packet = destination[..totalLength];
        TcpFlags flags = TcpFlags.Syn | TcpFlags.Ack | (ece ? TcpFlags.Ece : TcpFlags.None);
        Span<byte> segment = WriteHeaders(packet, source, sourcePort, destinationAddr, destinationPort,
            sequence, acknowledgment, flags, window);
        WriteSynAckOptions(segment[TcpLayout.Options..], options);
        FinishTcpChecksum(segment, source, destinationAddr);
        return totalLength;
    }

    /// <summary>
    /// Writes a bare RST with the given sequence number; with an acknowledgment it is RST|ACK carrying it.
    /// Returns its length (40).
    /// </summary>
    public static int WriteRst(Span<byte> destination, uint source, ushort sourcePort, uint destinationAddr,
        ushort destinationPort, uint sequence, uint? acknowledgment)
    {
        if (destination.Length < RstLength)
            throw new ArgumentException($"RST needs {RstLength} bytes, got {destination.Length}.", nameof(destination));

        Span<byte> packet = destination[..RstLength];
        TcpFlags flags = acknowledgment.HasValue ? TcpFlags.Rst | TcpFlags.Ack : TcpFlags.Rst;
        Span<byte> segment = WriteHeaders(packet, source, sourcePort, destinationAddr, destinationPort,
            sequence, acknowledgment.GetValueOrDefault(), flags, window: 0);
        FinishTcpChecksum(segment, source, destinationAddr);
        return RstLength;
    }

    /// <summary>Length of a segment without options: 20 bytes IP + 20 bytes TCP, plus its payload.</summary>
    public static int SegmentLength(int payloadLength) => Ipv4Layout.MinHeaderLength + TcpLayout.MinHeaderLength + payloadLength;

    /// <summary>
    /// Writes an IPv4+TCP segment without options, with any flags, window and payload, and returns
    /// its length: what a test's packet forger sends (the router itself sends only SYN-ACKs and RSTs).
    /// </summary>
    public static int WriteSegment(Span<byte> destination, uint source, ushort sourcePort, uint destinationAddr,
        ushort destinationPort, uint sequence, uint acknowledgment, TcpFlags flags, ushort window, ReadOnlySpan<byte> payload = default)
    {
        int totalLength = SegmentLength(payload.Length);
        if (destination.Length < totalLength || totalLength > ushort.MaxValue)
            throw new ArgumentException($"The segment needs {totalLength} bytes, got {destination.Length}.", nameof(destination));

        Span<byte> packet = destination[..totalLength];
        Span<byte> segment = WriteHeaders(packet, source, sourcePort, destinationAddr, destinationPort,
            sequence, acknowledgment, flags, window, TcpLayout.MinHeaderLength);
        payload.CopyTo(segment[TcpLayout.MinHeaderLength..]);
        FinishTcpChecksum(segment, source, destinationAddr);
        return totalLength;
    }

    internal static int SynAckOptionsLength(in SynAckOptions options)
    {
        int length = 0;
        if (options.Mss != 0)
            length += 4;
        if (options.HasTimestamps)
            length += 12;
        else if (options.SackPermitted)
            length += 4;
        if (options.WindowScale >= 0)
            length += 4;
        return length;
    }

    private static void WriteSynAckOptions(Span<byte> o, in SynAckOptions options)
    {
        int i = 0;
        if (options.Mss != 0)
        {
            o[i] = TcpOptionKind.Mss;
            o[i + 1] = TcpOptionKind.MssLength;
            BinaryPrimitives.WriteUInt16BigEndian(o[(i + 2)..], options.Mss);
            i += 4;
        }
        if (options.HasTimestamps)
        {
            // SACK-permitted takes the two bytes NOPs would otherwise pad.
            if (options.SackPermitted)
            {
                o[i] = TcpOptionKind.SackPermitted;
                o[i + 1] = TcpOptionKind.SackPermittedLength;
            }
            else
            {
                o[i] = TcpOptionKind.Nop;
                o[i + 1] = TcpOptionKind.Nop;
            }
            o[i + 2] = TcpOptionKind.Timestamps;
            o[i + 3] = TcpOptionKind.TimestampsLength;
            BinaryPrimitives.WriteUInt32BigEndian(o[(i + 4)..], options.TsVal);
            BinaryPrimitives.WriteUInt32BigEndian(o[(i + 8)..], options.TsEcr);
            i += 12;
        }
        else if (options.SackPermitted)
        {
            o[i] = TcpOptionKind.Nop;
            o[i + 1] = TcpOptionKind.Nop;
            o[i + 2] = TcpOptionKind.SackPermitted;
            o[i + 3] = TcpOptionKind.SackPermittedLength;
            i += 4;
        }
        if (options.WindowScale >= 0)
        {
            o[i] = TcpOptionKind.Nop;
            o[i + 1] = TcpOptionKind.WindowScale;
            o[i + 2] = TcpOptionKind.WindowScaleLength;
            o[i + 3] = (byte)Math.Min((int)options.WindowScale, TcpOptionKind.MaxWindowScale);
        }
    }

    /// <summary>
    /// Writes the IPv4 header (with checksum) and the fixed TCP header (checksum zero); returns the TCP segment.
    /// The TCP header is the whole segment unless <paramref name="tcpHeaderLength"/> says where the payload starts.
    /// </summary>
    private static Span<byte> WriteHeaders(Span<byte> packet, uint source, ushort sourcePort, uint destinationAddr,
        ushort destinationPort, uint sequence, uint acknowledgment, TcpFlags flags, ushort window, int tcpHeaderLength = -1)
    {
        Span<byte> ip = packet[..Ipv4Layout.MinHeaderLength];
        ip[Ipv4Layout.VersionIhl] = (Ipv4Layout.Version << 4) | (Ipv4Layout.MinHeaderLength / 4);
        ip[Ipv4Layout.TypeOfService] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.TotalLength..], (ushort)packet.Length);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.Identification..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.FlagsFragment..], Ipv4Layout.DontFragment);
        ip[Ipv4Layout.TimeToLive] = Ipv4Layout.DefaultTtl;
        ip[Ipv4Layout.Protocol] = Ipv4Layout.ProtocolTcp;
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.HeaderChecksum..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Layout.SourceAddress..], source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Layout.DestinationAddress..], destinationAddr);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.HeaderChecksum..], Checksum.Compute(ip));

        Span<byte> segment = packet[Ipv4Layout.MinHeaderLength..];
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.SourcePort..], sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.DestinationPort..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment[TcpLayout.Sequence..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(segment[TcpLayout.Acknowledgment..], acknowledgment);
        segment[TcpLayout.DataOffset] = (byte)((tcpHeaderLength < 0 ? segment.Length : tcpHeaderLength) / 4 << 4);
        segment[TcpLayout.Flags] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.Window..], window);
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.Checksum..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.UrgentPointer..], 0);
        return segment;
    }

    private static void FinishTcpChecksum(Span<byte> segment, uint source, uint destinationAddr) =>
        BinaryPrimitives.WriteUInt16BigEndian(segment[TcpLayout.Checksum..],
            Checksum.ComputeTcp(source, destinationAddr, segment));
}
