using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// Removes the options of an IPv4 header in place. Options such as Record Route (RFC 791 3.1,
/// type 7) and Timestamp (type 68) carry the addresses of the hops a datagram crossed, so a relay
/// that passes them on tells one side of a splice about the other side's network.
/// <code>
/// before: | fixed header (20) | options (IHL*4 - 20) | TCP header and data ... |
/// after:  | (unused)          | fixed header (20), IHL 5 | TCP header and data ... |
///         ^ packet            ^ packet + options length
/// </code>
/// The fixed header moves forward instead of the payload backward: 20 bytes copied whatever the
/// datagram's size. The transport checksum covers no IP option, so it stays right as it is.
/// </summary>
public static class Ipv4Options
{
    /// <summary>
    /// Strips the options of the datagram that starts <paramref name="packet"/>, whose header is
    /// <paramref name="headerLength"/> bytes and whose total length is <paramref name="totalLength"/>:
    /// fixes IHL, the total length and the header checksum. Returns where the datagram starts now
    /// (the options' length; 0 when it had none and nothing changed). Never allocates.
    /// </summary>
    public static int Strip(Span<byte> packet, int headerLength, int totalLength)
    {
        var options = headerLength - Ipv4Layout.MinHeaderLength;
        if (options <= 0)
            return 0;
        packet[..Ipv4Layout.MinHeaderLength].CopyTo(packet[options..]); // overlapping: copied as by memmove
        var ip = packet.Slice(options, Ipv4Layout.MinHeaderLength);
        ip[Ipv4Layout.VersionIhl] = (Ipv4Layout.Version << 4) | (Ipv4Layout.MinHeaderLength / 4);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.TotalLength..], (ushort)(totalLength - options));
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.HeaderChecksum..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Layout.HeaderChecksum..], Checksum.Compute(ip));
        return options;
    }
}
