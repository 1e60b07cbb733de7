using System.Buffers.Binary;
using Glass.Packets;

namespace Glass.Tests.Packets;

public class TcpSegmentBuilderTests
{
    private const uint Src = 0xCB007101;   // 203.0.113.1
    private const uint Dst = 0xC0000201;   // 192.0.2.1
    private const ushort SrcPort = 443;
    private const ushort DstPort = 54321;
    private const uint Seq = 0xFFFFFFFE;
    private const uint Ack = 1001;
    private const ushort Window = 65160;

    private const string Mss = "020405b4";
    private const string Ts = "01020304 0a0b0c0d";

    public static TheoryData<bool, bool, bool, bool, string> Layouts => new()
    {
        // mss,  sack,  ts,    ws,    expected option bytes
        { false, false, false, false, "" },
        { true,  false, false, false, Mss },
        { false, true,  false, false, "01010402" },
        { false, false, true,  false, "0101080a" + Ts },
        { false, false, false, true,  "01030307" },
        { true,  true,  false, false, Mss + "01010402" },
        { true,  false, true,  false, Mss + "0101080a" + Ts },
        { true,  false, false, true,  Mss + "01030307" },
        { false, true,  true,  false, "0402080a" + Ts },
        { false, true,  false, true,  "01010402 01030307" },
        { false, false, true,  true,  "0101080a" + Ts + "01030307" },
        { true,  true,  true,  false, Mss + "0402080a" + Ts },
        { true,  true,  false, true,  Mss + "01010402 01030307" },
        { true,  false, true,  true,  Mss + "0101080a" + Ts + "01030307" },
        { false, true,  true,  true,  "0402080a" + Ts + "01030307" },
        { true,  true,  true,  true,  Mss + "0402080a" + Ts + "01030307" },
    };

    private static SynAckOptions Options(bool mss, bool sack, bool ts, bool ws) => new()
    {
        Mss = mss ? (ushort)1460 : (ushort)0,
        SackPermitted = sack,
        HasTimestamps = ts,
        TsVal = ts ? 0x01020304u : 0,
        TsEcr = ts ? 0x0A0B0C0Du : 0,
        WindowScale = ws ? (sbyte)7 : (sbyte)-1,
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void SynAckLayoutReparsesAndVerifies(bool mss, bool sack, bool ts, bool ws, string expectedOptions)
    {
        byte[] expected = Hex.Bytes(expectedOptions);
        Assert.Equal(0, expected.Length % 4);

        foreach (bool ece in new[] { false, true })
        {
            var options = Options(mss, sack, ts, ws);
            byte[] buffer = new byte[TcpSegmentBuilder.MaxSynAckLength + 8];
            Array.Fill(buffer, (byte)0xEE); // stale bytes must not leak into the packet
            int length = TcpSegmentBuilder.WriteSynAck(buffer, Src, SrcPort, Dst, DstPort, Seq, Ack, Window, ece, options);

            Assert.Equal(40 + expected.Length, length);
            Assert.True(length <= TcpSegmentBuilder.MaxSynAckLength);
            Assert.All(buffer[length..], b => Assert.Equal(0xEE, b));
            byte[] p = buffer[..length];

            // Fixed IPv4 fields.
            Assert.Equal(0x45, p[0]);
            Assert.Equal(0, p[1]);
            Assert.Equal(length, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(2)));
            Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(4)));
            Assert.Equal(0x4000, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(6)));
            Assert.Equal(64, p[8]);
            Assert.Equal(6, p[9]);
            Assert.Equal(ReferenceChecksum.Ip(p), ReferenceChecksum.IpField(p));
            Assert.Equal(ReferenceChecksum.Tcp(p), ReferenceChecksum.TcpField(p));
            Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(38))); // urgent pointer
            Assert.Equal(expected, p[40..]);

            Assert.True(TcpPacket.TryParse(p, out var tcp));
            Assert.Equal(Src, tcp.SourceAddress);
            Assert.Equal(Dst, tcp.DestinationAddress);
            Assert.Equal(SrcPort, tcp.SourcePort);
            Assert.Equal(DstPort, tcp.DestinationPort);
            Assert.Equal(Seq, tcp.Sequence);
            Assert.Equal(Ack, tcp.Acknowledgment);
            Assert.Equal(Window, tcp.Window);
            Assert.Equal(ece ? TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Ece : TcpFlags.Syn | TcpFlags.Ack, tcp.Flags);
            Assert.Equal(20, tcp.IpHeaderLength);
            Assert.Equal(20 + expected.Length, tcp.TcpHeaderLength);
            Assert.Equal(0, tcp.PayloadLength);
            Assert.Equal(1u, tcp.SegmentLength);
            Assert.False(tcp.IsFragment);
            Assert.True(Checksum.VerifyIpv4Header(p));
            Assert.True(Checksum.VerifyTcp(p, tcp));

            Assert.True(TcpSynOptions.TryParse(p.AsSpan(tcp.OptionsOffset, tcp.OptionsLength), out var parsed));
            Assert.Equal(options.Mss, parsed.Mss);
            Assert.Equal(options.WindowScale, parsed.WindowScale);
            Assert.Equal(options.SackPermitted, parsed.SackPermitted);
            Assert.Equal(options.HasTimestamps, parsed.HasTimestamps);
            Assert.Equal(options.TsVal, parsed.TsVal);
            Assert.Equal(options.TsEcr, parsed.TsEcr);
            Assert.False(parsed.HasFastOpen);
            Assert.False(parsed.HasMptcp);
        }
    }

    [Fact]
    public void Lengths()
    {
        Assert.Equal(60, TcpSegmentBuilder.MaxSynAckLength);
        Assert.Equal(40, TcpSegmentBuilder.RstLength);
    }

    [Fact]
    public void FullSynAckBytes()
    {
        var options = Options(mss: true, sack: true, ts: true, ws: true);
        byte[] p = new byte[TcpSegmentBuilder.MaxSynAckLength];
        int length = TcpSegmentBuilder.WriteSynAck(p, Src, SrcPort, Dst, DstPort, Seq, Ack, Window, ece: false, options);
        Assert.Equal(TcpSegmentBuilder.MaxSynAckLength, length);

        byte[] expected = Hex.Bytes(
            "45 00 00 3c 00 00 40 00 40 06 0000 cb 00 71 01 c0 00 02 01" +
            "01 bb d4 31 ff ff ff fe 00 00 03 e9 a0 12 fe 88 0000 00 00" +
            "02 04 05 b4 04 02 08 0a 01 02 03 04 0a 0b 0c 0d 01 03 03 07");
        ReferenceChecksum.Fill(expected);
        Assert.Equal(expected, p);
    }

    [Fact]
    public void WindowScaleAbove14IsWrittenAs14()
    {
        var options = new SynAckOptions { WindowScale = 15 };
        byte[] p = new byte[TcpSegmentBuilder.MaxSynAckLength];
        int length = TcpSegmentBuilder.WriteSynAck(p, Src, SrcPort, Dst, DstPort, Seq, Ack, Window, false, options);
        Assert.Equal(44, length);
        Assert.Equal(new byte[] { 1, 3, 3, 14 }, p[40..44]);
        options.WindowScale = 0;
        TcpSegmentBuilder.WriteSynAck(p, Src, SrcPort, Dst, DstPort, Seq, Ack, Window, false, options);
        Assert.Equal(new byte[] { 1, 3, 3, 0 }, p[40..44]);
    }

    [Fact]
    public void DefaultOptionsStructStillWritesWindowScaleZero()
    {
        // default(SynAckOptions) has WindowScale 0, which is a valid shift; callers omit it with -1.
        byte[] p = new byte[TcpSegmentBuilder.MaxSynAckLength];
        Assert.Equal(44, TcpSegmentBuilder.WriteSynAck(p, Src, SrcPort, Dst, DstPort, Seq, Ack, Window, false, default));
    }

    [Fact]
    public void TooSmallDestinationThrowsWithoutWriting()
    {
        var options = Options(true, true, true, true);
        byte[] small = new byte[59];
        Assert.Throws<ArgumentException>(() =>
            TcpSegmentBuilder.WriteSynAck(small, Src, SrcPort, Dst, DstPort, Seq, Ack, Window, false, options));
        Assert.All(small, b => Assert.Equal(0, b));
        Assert.Throws<ArgumentException>(() =>
            TcpSegmentBuilder.WriteRst(new byte[39], Src, SrcPort, Dst, DstPort, Seq, null));
    }

    [Fact]
    public void RstWithoutAck()
    {
        byte[] p = new byte[64];
        Array.Fill(p, (byte)0xEE);
        int length = TcpSegmentBuilder.WriteRst(p, Src, SrcPort, Dst, DstPort, 0x12345678, null);
        Assert.Equal(40, length);
        Assert.Equal(TcpSegmentBuilder.RstLength, length);
        Assert.Equal(0xEE, p[40]);

        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.Equal(TcpFlags.Rst, tcp.Flags);
        Assert.Equal(0x12345678u, tcp.Sequence);
        Assert.Equal(0u, tcp.Acknowledgment);
        Assert.Equal((ushort)0, tcp.Window);
        Assert.Equal(20, tcp.TcpHeaderLength);
        Assert.Equal(40, tcp.TotalLength);
        Assert.Equal(0u, tcp.SegmentLength);
        Assert.Equal(Src, tcp.SourceAddress);
        Assert.Equal(DstPort, tcp.DestinationPort);
        Assert.True(Checksum.VerifyIpv4Header(p));
        Assert.True(Checksum.VerifyTcp(p, tcp));
        Assert.Equal(0x4000, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(6)));
        Assert.Equal(64, p[8]);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1001u)]
    [InlineData(uint.MaxValue)]
    public void RstWithAck(uint ack)
    {
        byte[] p = new byte[40];
        Array.Fill(p, (byte)0xEE);
        Assert.Equal(40, TcpSegmentBuilder.WriteRst(p, Src, SrcPort, Dst, DstPort, 7, ack));
        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, tcp.Flags);
        Assert.Equal(7u, tcp.Sequence);
        Assert.Equal(ack, tcp.Acknowledgment);
        Assert.Equal(ReferenceChecksum.Ip(p), ReferenceChecksum.IpField(p));
        Assert.Equal(ReferenceChecksum.Tcp(p), ReferenceChecksum.TcpField(p));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(p.AsSpan(38)));
    }

    [Fact]
    public void RandomSynAcksAlwaysVerify()
    {
        var rng = new Random(7323);
        byte[] p = new byte[TcpSegmentBuilder.MaxSynAckLength];
        for (int i = 0; i < 2000; i++)
        {
            var o = new SynAckOptions
            {
                Mss = (ushort)rng.Next(65536),
                WindowScale = (sbyte)rng.Next(-1, 15),
                SackPermitted = rng.Next(2) == 1,
                HasTimestamps = rng.Next(2) == 1,
            };
            if (o.HasTimestamps)
            {
                o.TsVal = (uint)rng.NextInt64(0, 1L << 32);
                o.TsEcr = (uint)rng.NextInt64(0, 1L << 32);
            }
            uint src = (uint)rng.NextInt64(0, 1L << 32), dst = (uint)rng.NextInt64(0, 1L << 32);
            int len = TcpSegmentBuilder.WriteSynAck(p, src, (ushort)rng.Next(65536), dst, (ushort)rng.Next(65536),
                (uint)rng.NextInt64(0, 1L << 32), (uint)rng.NextInt64(0, 1L << 32), (ushort)rng.Next(65536), rng.Next(2) == 1, o);
            byte[] packet = p[..len];
            Assert.True(TcpPacket.TryParse(packet, out var tcp));
            Assert.True(Checksum.VerifyIpv4Header(packet));
            Assert.True(Checksum.VerifyTcp(packet, tcp));
            Assert.Equal(ReferenceChecksum.Tcp(packet), ReferenceChecksum.TcpField(packet));
            Assert.True(TcpSynOptions.TryParse(packet.AsSpan(tcp.OptionsOffset, tcp.OptionsLength), out var parsed));
            Assert.Equal(o.Mss, parsed.Mss);
            Assert.Equal(o.WindowScale, parsed.WindowScale);
            Assert.Equal(o.SackPermitted, parsed.SackPermitted);
            Assert.Equal(o.HasTimestamps, parsed.HasTimestamps);
            Assert.Equal(o.TsVal, parsed.TsVal);
            Assert.Equal(o.TsEcr, parsed.TsEcr);
        }
    }
}
