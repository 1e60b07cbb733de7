using Glass.Packets;

namespace Glass.Tests.Packets;

public class Ipv4OptionsTests
{
    // Record Route (type 7, length 11, pointer 12) holding two hop addresses, then Timestamp
    // (type 68, length 12, pointer 13, flags 1: address + time) with room for one entry.
    private static readonly byte[] RecordRouteAndTimestamp =
        [7, 11, 12, 10, 1, 1, 1, 10, 2, 2, 2, 0, 68, 12, 13, 1, 0, 0, 0, 0, 0, 0, 0, 0];

    [Fact]
    public void StrippingLeavesAValidDatagramWithTheSameSegment()
    {
        var spec = new PacketSpec { IpOptions = RecordRouteAndTimestamp, Flags = TcpFlags.Ack | TcpFlags.Psh, Acknowledgment = 77, Payload = [1, 2, 3, 4, 5] };
        var packet = spec.Build();
        Assert.True(TcpPacket.TryParse(packet, out var before));
        Assert.Equal(44, before.IpHeaderLength);

        var cut = Ipv4Options.Strip(packet, before.IpHeaderLength, before.TotalLength);

        Assert.Equal(24, cut);
        var stripped = packet.AsSpan(cut).ToArray();
        Assert.True(TcpPacket.TryParse(stripped, out var after));
        Assert.Equal((20, before.TotalLength - 24), (after.IpHeaderLength, after.TotalLength));
        Assert.True(Checksum.VerifyIpv4Header(stripped));
        Assert.True(Checksum.VerifyTcp(stripped, after)); // the TCP checksum covers no IP option
        Assert.Equal((before.SourceAddress, before.DestinationAddress, before.Sequence, before.Acknowledgment, before.Flags),
            (after.SourceAddress, after.DestinationAddress, after.Sequence, after.Acknowledgment, after.Flags));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, stripped[^5..]);
        // Identification, flags, TTL and protocol are kept; no hop address is left.
        Assert.Equal(spec.Build().AsSpan(4, 6).ToArray(), stripped.AsSpan(4, 6).ToArray());
        Assert.Equal(-1, stripped.AsSpan().IndexOf(new byte[] { 10, 1, 1, 1 }));
    }

    [Fact]
    public void ADatagramWithoutOptionsIsLeftAlone()
    {
        var packet = new PacketSpec { Payload = [9, 9] }.Build();
        var copy = (byte[])packet.Clone();
        Assert.Equal(0, Ipv4Options.Strip(packet, 20, packet.Length));
        Assert.Equal(copy, packet);
    }
}
