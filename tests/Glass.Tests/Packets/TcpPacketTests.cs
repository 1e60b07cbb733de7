using System.Buffers.Binary;
using Glass.Packets;

namespace Glass.Tests.Packets;

public class TcpPacketTests
{
    // A Linux-style SYN 192.0.2.1:54321 -> 203.0.113.1:443, options MSS 1460, SACK-OK, TS, NOP, WS 7.
    private const string LinuxSyn =
        "45 00 00 3c 1c 46 40 00 40 06 00 00 c0 00 02 01 cb 00 71 01" +
        "d4 31 01 bb 00 00 03 e8 00 00 00 00 a0 02 fa f0 00 00 00 00" +
        "02 04 05 b4 04 02 08 0a 00 01 e2 40 00 00 00 00 01 03 03 07";

    [Fact]
    public void ParsesHandBuiltLinuxSyn()
    {
        byte[] p = Hex.Bytes(LinuxSyn);

        Assert.True(TcpPacket.TryParse(p, out var tcp));

        Assert.Equal(0xC0000201u, tcp.SourceAddress);
        Assert.Equal(0xCB007101u, tcp.DestinationAddress);
        Assert.Equal(20, tcp.IpHeaderLength);
        Assert.Equal(60, tcp.TotalLength);
        Assert.False(tcp.IsFragment);
        Assert.Equal((ushort)54321, tcp.SourcePort);
        Assert.Equal((ushort)443, tcp.DestinationPort);
        Assert.Equal(1000u, tcp.Sequence);
        Assert.Equal(0u, tcp.Acknowledgment);
        Assert.Equal(TcpFlags.Syn, tcp.Flags);
        Assert.Equal((ushort)64240, tcp.Window);
        Assert.Equal(40, tcp.TcpHeaderLength);
        Assert.Equal(0, tcp.PayloadLength);
        Assert.Equal(20, tcp.TcpOffset);
        Assert.Equal(40, tcp.OptionsOffset);
        Assert.Equal(20, tcp.OptionsLength);
        Assert.Equal(1u, tcp.SegmentLength);

        Assert.True(TcpSynOptions.TryParse(p.AsSpan(tcp.OptionsOffset, tcp.OptionsLength), out var o));
        Assert.Equal((ushort)1460, o.Mss);
        Assert.True(o.SackPermitted);
        Assert.True(o.HasTimestamps);
        Assert.Equal(123456u, o.TsVal);
        Assert.Equal((sbyte)7, o.WindowScale);
    }

    [Fact]
    public void ParsesIpOptionsPayloadAndIgnoresEthernetPadding()
    {
        var spec = new PacketSpec
        {
            IpOptions = [0x94, 0x04, 0x00, 0x00],             // router alert: IHL 6
            TcpOptions = [1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 9],
            Flags = TcpFlags.Ack | TcpFlags.Psh,
            Acknowledgment = 0xFFFFFFF0,
            Sequence = 0x80000001,
            Payload = [1, 2, 3, 4, 5],
            Padding = 9,
        };
        byte[] p = spec.Build();

        Assert.True(TcpPacket.TryParse(p, out var tcp));

        Assert.Equal(24, tcp.IpHeaderLength);
        Assert.Equal(24 + 32 + 5, tcp.TotalLength);
        Assert.Equal(p.Length - 9, tcp.TotalLength);
        Assert.Equal(24, tcp.TcpOffset);
        Assert.Equal(44, tcp.OptionsOffset);
        Assert.Equal(12, tcp.OptionsLength);
        Assert.Equal(32, tcp.TcpHeaderLength);
        Assert.Equal(5, tcp.PayloadLength);
        Assert.Equal(0x80000001u, tcp.Sequence);
        Assert.Equal(0xFFFFFFF0u, tcp.Acknowledgment);
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh, tcp.Flags);
        Assert.Equal(5u, tcp.SegmentLength);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, p[(tcp.TcpOffset + tcp.TcpHeaderLength)..tcp.TotalLength]);
        Assert.True(TcpTimestamps.TryFind(p.AsSpan(tcp.OptionsOffset, tcp.OptionsLength), out uint val, out uint ecr));
        Assert.Equal(5u, val);
        Assert.Equal(9u, ecr);
        Assert.True(Checksum.VerifyTcp(p, tcp));
    }

    [Fact]
    public void ParsesMaximalHeaders()
    {
        var spec = new PacketSpec
        {
            IpOptions = Enumerable.Repeat((byte)1, 40).ToArray(),
            TcpOptions = Enumerable.Repeat((byte)1, 40).ToArray(),
        };
        Assert.True(TcpPacket.TryParse(spec.Build(), out var tcp));
        Assert.Equal(60, tcp.IpHeaderLength);
        Assert.Equal(60, tcp.TcpHeaderLength);
        Assert.Equal(120, tcp.TotalLength);
        Assert.Equal(80, tcp.OptionsOffset);
        Assert.Equal(40, tcp.OptionsLength);
        Assert.Equal(0, tcp.PayloadLength);
    }

    [Fact]
    public void FirstFragmentWithMoreFragmentsParsesAsFragment()
    {
        var spec = new PacketSpec { FlagsFragment = 0x2000, Flags = TcpFlags.Ack, Payload = new byte[100] };
        Assert.True(TcpPacket.TryParse(spec.Build(), out var tcp));
        Assert.True(tcp.IsFragment);
        Assert.Equal(100, tcp.PayloadLength);
    }

    [Theory]
    [InlineData(0x0000)]
    [InlineData(0x4000)]
    [InlineData(0x8000)] // reserved bit: not our business
    public void UnfragmentedIsNotFragment(int flagsFragment)
    {
        var spec = new PacketSpec { FlagsFragment = (ushort)flagsFragment };
        Assert.True(TcpPacket.TryParse(spec.Build(), out var tcp));
        Assert.False(tcp.IsFragment);
    }

    [Theory]
    [InlineData(TcpFlags.Syn, 0, 1u)]
    [InlineData(TcpFlags.Syn | TcpFlags.Ack, 0, 1u)]
    [InlineData(TcpFlags.Fin | TcpFlags.Ack, 0, 1u)]
    [InlineData(TcpFlags.Syn | TcpFlags.Fin, 3, 5u)]
    [InlineData(TcpFlags.Ack, 0, 0u)]
    [InlineData(TcpFlags.Ack | TcpFlags.Psh, 7, 7u)]
    [InlineData(TcpFlags.Rst, 0, 0u)]
    public void SegmentLengthCountsPayloadSynAndFin(TcpFlags flags, int payload, uint expected)
    {
        var spec = new PacketSpec { Flags = flags, Payload = new byte[payload] };
        Assert.True(TcpPacket.TryParse(spec.Build(), out var tcp));
        Assert.Equal(expected, tcp.SegmentLength);
    }

    [Fact]
    public void AllFlagBitsMapToEnum()
    {
        var all = TcpFlags.Fin | TcpFlags.Syn | TcpFlags.Rst | TcpFlags.Psh | TcpFlags.Ack | TcpFlags.Urg | TcpFlags.Ece | TcpFlags.Cwr;
        Assert.Equal(0xFF, (int)all);
        foreach (TcpFlags f in Enum.GetValues<TcpFlags>())
        {
            var spec = new PacketSpec { Flags = f };
            Assert.True(TcpPacket.TryParse(spec.Build(), out var tcp));
            Assert.Equal(f, tcp.Flags);
        }
    }

    [Fact]
    public void ParseDoesNotNeedCorrectChecksums()
    {
        var spec = new PacketSpec { FillChecksums = false };
        Assert.True(TcpPacket.TryParse(spec.Build(), out _));
    }

    [Fact]
    public void EveryTruncationIsRejected()
    {
        var spec = new PacketSpec { IpOptions = [1, 1, 1, 0], TcpOptions = [2, 4, 5, 0xb4], Payload = [9, 9, 9] };
        byte[] p = spec.Build();
        Assert.True(TcpPacket.TryParse(p, out _));
        for (int len = 0; len < p.Length; len++)
            Assert.False(TcpPacket.TryParse(p.AsSpan(0, len), out _), $"prefix of {len} bytes parsed");
    }

    [Fact]
    public void TruncationWithConsistentTotalLengthIsRejectedInsideHeaders()
    {
        // Total length shrunk along with the span: fails while it cuts into the IP or TCP header.
        var spec = new PacketSpec { IpOptions = [1, 1, 1, 0], TcpOptions = [2, 4, 5, 0xb4] };
        byte[] p = spec.Build();
        int headers = 24 + 24;
        for (int len = 0; len < headers; len++)
        {
            byte[] cut = p[..len];
            if (len >= 4)
                BinaryPrimitives.WriteUInt16BigEndian(cut.AsSpan(2), (ushort)len);
            Assert.False(TcpPacket.TryParse(cut, out _), $"header cut at {len} parsed");
        }
        byte[] exact = p[..headers];
        BinaryPrimitives.WriteUInt16BigEndian(exact.AsSpan(2), (ushort)headers);
        Assert.True(TcpPacket.TryParse(exact, out var tcp));
        Assert.Equal(0, tcp.PayloadLength);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(15)]
    public void RejectsVersionOtherThanFour(int version)
    {
        byte[] p = new PacketSpec().Build();
        p[0] = (byte)((version << 4) | (p[0] & 0x0F));
        Assert.False(TcpPacket.TryParse(p, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void RejectsIhlBelowFive(int ihl)
    {
        byte[] p = new PacketSpec().Build();
        p[0] = (byte)(0x40 | ihl);
        Assert.False(TcpPacket.TryParse(p, out _));
    }

    [Fact]
    public void RejectsIhlBeyondTotalLength()
    {
        byte[] p = new PacketSpec().Build(); // 40 bytes, IHL 5
        p[0] = 0x4F;                         // claims a 60-byte IP header
        Assert.False(TcpPacket.TryParse(p, out _));
        p[0] = 0x46;                         // 24-byte IP header leaves 16 for TCP
        Assert.False(TcpPacket.TryParse(p, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(19)]
    [InlineData(20)]
    [InlineData(39)]  // ihl + 19
    [InlineData(41)]  // > span
    [InlineData(0xFFFF)]
    public void RejectsBadTotalLength(int total)
    {
        byte[] p = new PacketSpec().Build();
        Assert.Equal(40, p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)total);
        Assert.False(TcpPacket.TryParse(p, out _));
    }

    [Fact]
    public void TotalLengthBelowSpanIsHonoured()
    {
        var spec = new PacketSpec { Payload = new byte[10] };
        byte[] p = spec.Build();
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), 44);
        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.Equal(44, tcp.TotalLength);
        Assert.Equal(4, tcp.PayloadLength);
    }

    [Theory]
    [InlineData(1)]   // ICMP
    [InlineData(17)]  // UDP
    [InlineData(41)]  // IPv6-in-IPv4
    [InlineData(0)]
    [InlineData(255)]
    public void RejectsNonTcp(int protocol)
    {
        var spec = new PacketSpec { Protocol = (byte)protocol };
        Assert.False(TcpPacket.TryParse(spec.Build(), out _));
    }

    [Theory]
    [InlineData(0x0001)]
    [InlineData(0x2001)] // MF + offset: middle fragment
    [InlineData(0x4001)]
    [InlineData(0x1FFF)]
    [InlineData(0x0100)]
    public void RejectsNonFirstFragments(int flagsFragment)
    {
        var spec = new PacketSpec { FlagsFragment = (ushort)flagsFragment, Payload = new byte[40] };
        Assert.False(TcpPacket.TryParse(spec.Build(), out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void RejectsDataOffsetBelowFive(int dataOffset)
    {
        byte[] p = new PacketSpec { Payload = new byte[40] }.Build();
        p[20 + 12] = (byte)(dataOffset << 4);
        Assert.False(TcpPacket.TryParse(p, out _));
    }

    [Fact]
    public void RejectsDataOffsetBeyondTotalLength()
    {
        var spec = new PacketSpec { TcpOptions = [1, 1, 1, 1] }; // doff 6, total 44
        byte[] p = spec.Build();
        p[20 + 12] = 7 << 4;
        Assert.False(TcpPacket.TryParse(p, out _));
        p[20 + 12] = 15 << 4;
        Assert.False(TcpPacket.TryParse(p, out _));

        // Even when the span holds the bytes, the header must end within the total length.
        byte[] padded = new PacketSpec { TcpOptions = [1, 1, 1, 1], Padding = 40 }.Build();
        padded[20 + 12] = 7 << 4;
        Assert.False(TcpPacket.TryParse(padded, out _));
        padded[20 + 12] = 6 << 4;
        Assert.True(TcpPacket.TryParse(padded, out var tcp));
        Assert.Equal(24, tcp.TcpHeaderLength);
    }

    [Fact]
    public void ReservedBitsBesideDataOffsetAreIgnored()
    {
        byte[] p = new PacketSpec().Build();
        p[20 + 12] = 0x5F;
        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.Equal(20, tcp.TcpHeaderLength);
    }

    [Fact]
    public void FailureLeavesDefault()
    {
        byte[] p = new PacketSpec().Build();
        p[9] = 17;
        Assert.False(TcpPacket.TryParse(p, out var tcp));
        Assert.Equal(0, tcp.TotalLength);
        Assert.Equal(0u, tcp.SourceAddress);
    }
}
