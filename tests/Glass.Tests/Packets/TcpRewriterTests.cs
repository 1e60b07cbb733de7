using System.Buffers.Binary;
using Glass.Packets;

namespace Glass.Tests.Packets;

public class TcpRewriterTests
{
    private static uint RandomUInt(Random rng) => (uint)rng.NextInt64(0, 1L << 32);

    private static uint PickAddress(Random rng) => rng.Next(8) switch
    {
        0 => 0,
        1 => uint.MaxValue,
        2 => 0xFFFF0000,
        3 => 0x0000FFFF,
        _ => RandomUInt(rng),
    };

    private static ushort PickPort(Random rng) => rng.Next(8) switch
    {
        0 => 0,
        1 => ushort.MaxValue,
        _ => (ushort)rng.Next(0, 65536),
    };

    private static PacketSpec RandomSpec(Random rng)
    {
        var spec = new PacketSpec
        {
            Source = PickAddress(rng),
            Destination = PickAddress(rng),
            SourcePort = PickPort(rng),
            DestinationPort = PickPort(rng),
            Sequence = RandomUInt(rng),
            Acknowledgment = RandomUInt(rng),
            Flags = (TcpFlags)rng.Next(256),
            Window = (ushort)rng.Next(65536),
            Urgent = (ushort)rng.Next(65536),
            Identification = (ushort)rng.Next(65536),
            Ttl = (byte)rng.Next(256),
            IpOptions = new byte[4 * rng.Next(0, 11)],
            TcpOptions = new byte[4 * rng.Next(0, 11)],
            Payload = new byte[rng.Next(0, 64)],
            Padding = rng.Next(0, 4),
        };
        rng.NextBytes(spec.IpOptions);
        rng.NextBytes(spec.TcpOptions);
        rng.NextBytes(spec.Payload);
        return spec;
    }

    /// <summary>Rewrites and checks every property the splice engine relies on.</summary>
    private static void RewriteAndCheck(byte[] packet, uint src, ushort sport, uint dst, ushort dport)
    {
        Assert.True(TcpPacket.TryParse(packet, out var tcp));
        byte[] before = (byte[])packet.Clone();

        TcpRewriter.Rewrite(packet, tcp, src, sport, dst, dport);

        // Checksums equal a from-scratch computation, bit for bit.
        Assert.Equal(ReferenceChecksum.Ip(packet), ReferenceChecksum.IpField(packet));
        Assert.Equal(ReferenceChecksum.Tcp(packet), ReferenceChecksum.TcpField(packet));

        Assert.True(TcpPacket.TryParse(packet, out var after));
        Assert.Equal(src, after.SourceAddress);
        Assert.Equal(dst, after.DestinationAddress);
        Assert.Equal(sport, after.SourcePort);
        Assert.Equal(dport, after.DestinationPort);
        Assert.True(Checksum.VerifyIpv4Header(packet));
        Assert.True(Checksum.VerifyTcp(packet, after));

        // Nothing else moved.
        int ihl = tcp.IpHeaderLength;
        var touched = new HashSet<int> { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, ihl, ihl + 1, ihl + 2, ihl + 3, ihl + 16, ihl + 17 };
        for (int i = 0; i < packet.Length; i++)
        {
            if (!touched.Contains(i))
                Assert.True(before[i] == packet[i], $"byte {i} changed");
        }
    }

    /// <summary>
    /// What the kernel puts in a CHECKSUM_PARTIAL packet's checksum field: the folded sum of the
    /// pseudo-header, not complemented (computed here with the reference summer).
    /// </summary>
    private static ushort ReferencePartial(byte[] packet)
    {
        int ihl = (packet[0] & 0x0F) * 4;
        int total = (packet[2] << 8) | packet[3];
        var pseudo = new byte[12];
        packet.AsSpan(12, 8).CopyTo(pseudo);
        pseudo[9] = 6;
        BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), (ushort)(total - ihl));
        return ReferenceChecksum.Sum(pseudo, 0, 12);
    }

    private static void MakePartial(byte[] packet) =>
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan((packet[0] & 0x0F) * 4 + 16), ReferencePartial(packet));

    [Fact]
    public void APartialChecksumRewriteEqualsTheNewPseudoHeaderSumAndFinishesToAFullRecomputation()
    {
        var rng = new Random(1071);
        for (int i = 0; i < 3000; i++)
        {
            byte[] full = RandomSpec(rng).Build();
            Assert.True(TcpPacket.TryParse(full, out var tcp));
            byte[] partial = (byte[])full.Clone();
            MakePartial(partial);
            Assert.Equal(ReferencePartial(partial), Checksum.PartialPseudoHeader(tcp.SourceAddress, tcp.DestinationAddress, tcp.TotalLength - tcp.TcpOffset));
            byte[] before = (byte[])partial.Clone();
            uint src = PickAddress(rng), dst = PickAddress(rng);
            ushort sport = PickPort(rng), dport = PickPort(rng);

            TcpRewriter.RewritePartial(partial, tcp, src, sport, dst, dport);
            TcpRewriter.Rewrite(full, tcp, src, sport, dst, dport);

            // The field is exactly the new pseudo-header's sum, and the IPv4 header checksum is exact.
            Assert.Equal(ReferencePartial(partial), ReferenceChecksum.TcpField(partial));
            Assert.Equal(ReferenceChecksum.Ip(partial), ReferenceChecksum.IpField(partial));
            // Finished as the kernel finishes it, it is the checksum a full recomputation gives.
            Assert.True(TcpPacket.TryParse(partial, out var after));
            Checksum.CompletePartialTcp(partial, after);
            Assert.Equal(ReferenceChecksum.Tcp(partial), ReferenceChecksum.TcpField(partial));
            Assert.Equal(full, partial);
            // Only addresses, ports and the two checksums moved.
            int ihl = tcp.IpHeaderLength;
            var touched = new HashSet<int> { 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, ihl, ihl + 1, ihl + 2, ihl + 3, ihl + 16, ihl + 17 };
            for (int b = 0; b < partial.Length; b++)
                Assert.True(touched.Contains(b) || before[b] == partial[b], $"byte {b} changed");
        }
    }

    [Fact]
    public void APartialRewriteOverEveryStartingPseudoHeaderSum()
    {
        // The source address's low word walks the partial sum through every value.
        var spec = new PacketSpec { Destination = 0, SourcePort = 0, DestinationPort = 0, Flags = TcpFlags.Ack, Payload = [0xAB] };
        for (int v = 0; v <= 0xFFFF; v++)
        {
            spec.Source = (uint)v;
            byte[] p = spec.Build();
            MakePartial(p);
            Assert.True(TcpPacket.TryParse(p, out var tcp));
            TcpRewriter.RewritePartial(p, tcp, uint.MaxValue, ushort.MaxValue, uint.MaxValue, ushort.MaxValue);
            Assert.Equal(ReferencePartial(p), ReferenceChecksum.TcpField(p));
            TcpRewriter.RewritePartial(p, tcp, 0, 0, 0, 0);
            Assert.Equal(ReferencePartial(p), ReferenceChecksum.TcpField(p));
            Assert.Equal(ReferenceChecksum.Ip(p), ReferenceChecksum.IpField(p));
        }
    }

    [Fact]
    public void ASuperPacketWithAFullOrStaleChecksumLeavesPartialForItsNewAddresses()
    {
        var rng = new Random(9);
        for (int i = 0; i < 500; i++)
        {
            byte[] p = RandomSpec(rng).Build();
            // GRO leaves the first segment's checksum in the field: anything at all.
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan((p[0] & 0x0F) * 4 + 16), (ushort)rng.Next(65536));
            Assert.True(TcpPacket.TryParse(p, out var tcp));
            TcpRewriter.RewriteToPartial(p, tcp, PickAddress(rng), PickPort(rng), PickAddress(rng), PickPort(rng));
            Assert.Equal(ReferencePartial(p), ReferenceChecksum.TcpField(p));
            Assert.Equal(ReferenceChecksum.Ip(p), ReferenceChecksum.IpField(p));
            Assert.True(TcpPacket.TryParse(p, out var after));
            Checksum.CompletePartialTcp(p, after);
            Assert.True(Checksum.VerifyTcp(p, after));
        }
    }

    [Fact]
    public void IncrementalEqualsFullRecomputationOverRandomPackets()
    {
        var rng = new Random(1624);
        for (int i = 0; i < 3000; i++)
        {
            byte[] p = RandomSpec(rng).Build();
            RewriteAndCheck(p, PickAddress(rng), PickPort(rng), PickAddress(rng), PickPort(rng));
        }
    }

    [Fact]
    public void EveryStartingChecksumValue()
    {
        // Sweeping the urgent pointer and IP ID walks both stored checksums through all 65535 valid values;
        // all-zero <-> all-ones rewrites give the largest carries the update can see.
        var spec = new PacketSpec { Source = 0, Destination = 0, SourcePort = 0, DestinationPort = 0, Flags = TcpFlags.Ack, Payload = [0xAB] };
        for (int v = 0; v <= 0xFFFF; v++)
        {
            spec.Urgent = (ushort)v;
            spec.Identification = (ushort)v;
            byte[] p = spec.Build();
            Assert.True(TcpPacket.TryParse(p, out var tcp));
            TcpRewriter.Rewrite(p, tcp, uint.MaxValue, ushort.MaxValue, uint.MaxValue, ushort.MaxValue);
            Assert.Equal(ReferenceChecksum.Ip(p), ReferenceChecksum.IpField(p));
            Assert.Equal(ReferenceChecksum.Tcp(p), ReferenceChecksum.TcpField(p));
            TcpRewriter.Rewrite(p, tcp, 0, 0, 0, 0);
            Assert.Equal(ReferenceChecksum.Ip(p), ReferenceChecksum.IpField(p));
            Assert.Equal(ReferenceChecksum.Tcp(p), ReferenceChecksum.TcpField(p));
        }
    }

    [Fact]
    public void RepeatedRewritesStayExact()
    {
        var rng = new Random(42);
        byte[] p = RandomSpec(rng).Build();
        for (int i = 0; i < 500; i++)
            RewriteAndCheck(p, PickAddress(rng), PickPort(rng), PickAddress(rng), PickPort(rng));
    }

    [Fact]
    public void IdentityRewriteChangesNothing()
    {
        var rng = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var spec = RandomSpec(rng);
            byte[] p = spec.Build();
            byte[] before = (byte[])p.Clone();
            Assert.True(TcpPacket.TryParse(p, out var tcp));
            TcpRewriter.Rewrite(p, tcp, tcp.SourceAddress, tcp.SourcePort, tcp.DestinationAddress, tcp.DestinationPort);
            Assert.Equal(before, p);
        }
    }

    [Fact]
    public void ResultingTcpChecksumOfZero()
    {
        // Choose the new destination port so that the rewritten segment's checksum is exactly 0x0000.
        var rng = new Random(5);
        for (int i = 0; i < 200; i++)
        {
            var spec = RandomSpec(rng);
            byte[] p = spec.Build();
            uint src = RandomUInt(rng), dst = RandomUInt(rng);
            ushort sport = (ushort)rng.Next(65536), dport = (ushort)rng.Next(65536);

            byte[] probe = (byte[])p.Clone();
            BinaryPrimitives.WriteUInt32BigEndian(probe.AsSpan(12), src);
            BinaryPrimitives.WriteUInt32BigEndian(probe.AsSpan(16), dst);
            BinaryPrimitives.WriteUInt16BigEndian(probe.AsSpan(spec.IpHeaderLength), sport);
            BinaryPrimitives.WriteUInt16BigEndian(probe.AsSpan(spec.IpHeaderLength + 2), dport);
            ushort sum = (ushort)~ReferenceChecksum.Tcp(probe);
            dport = ReferenceChecksum.Add(dport, (ushort)~sum);

            RewriteAndCheck(p, src, sport, dst, dport);
            Assert.Equal((ushort)0, ReferenceChecksum.TcpField(p));
        }
    }

    [Fact]
    public void ResultingIpChecksumOfZero()
    {
        var rng = new Random(6);
        for (int i = 0; i < 200; i++)
        {
            var spec = RandomSpec(rng);
            byte[] p = spec.Build();
            uint dst = RandomUInt(rng);
            ushort sport = (ushort)rng.Next(65536), dport = (ushort)rng.Next(65536);

            // Steer the low half of the new source address so the IP header sums to 0xFFFF.
            byte[] probe = (byte[])p.Clone();
            BinaryPrimitives.WriteUInt32BigEndian(probe.AsSpan(12), 0x0A000000);
            BinaryPrimitives.WriteUInt32BigEndian(probe.AsSpan(16), dst);
            ushort sum = (ushort)~ReferenceChecksum.Ip(probe);
            uint src = 0x0A000000u | ReferenceChecksum.Add(0, (ushort)~sum);

            RewriteAndCheck(p, src, sport, dst, dport);
            Assert.Equal((ushort)0, ReferenceChecksum.IpField(p));
        }
    }

    [Fact]
    public void StartingFromChecksumZero()
    {
        var rng = new Random(8);
        for (int i = 0; i < 200; i++)
        {
            byte[] p = ChecksumTests.PacketWithTcpChecksumZero();
            RewriteAndCheck(p, RandomUInt(rng), PickPort(rng), RandomUInt(rng), PickPort(rng));
        }
    }

    [Fact]
    public void AlternateZeroChecksumAndAllOnesFieldsToAllZeros()
    {
        // The one input where eqn. 3 itself would produce 0xFFFF: stored checksums 0xFFFF (valid "-0"),
        // old fields all ones, new fields all zeros. The result must still equal a full recomputation (0x0000).
        var spec = new PacketSpec
        {
            Source = uint.MaxValue, Destination = uint.MaxValue,
            SourcePort = ushort.MaxValue, DestinationPort = ushort.MaxValue,
            Flags = TcpFlags.Ack, Payload = [0x12, 0x34],
        };
        byte[] p = spec.Build();
        // Steer both data sums to 0xFFFF so that the correct checksums are 0x0000 ...
        spec.Identification = ReferenceChecksum.Add(spec.Identification, ReferenceChecksum.IpField(p));
        spec.Urgent = ReferenceChecksum.Add(spec.Urgent, ReferenceChecksum.TcpField(p));
        p = spec.Build();
        Assert.Equal((ushort)0, ReferenceChecksum.IpField(p));
        Assert.Equal((ushort)0, ReferenceChecksum.TcpField(p));
        // ... then store them as 0xFFFF, which verifies just as well.
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), 0xFFFF);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(36), 0xFFFF);
        Assert.True(Checksum.VerifyIpv4Header(p));

        RewriteAndCheck(p, 0, 0, 0, 0);
        Assert.Equal((ushort)0, ReferenceChecksum.IpField(p));
        Assert.Equal((ushort)0, ReferenceChecksum.TcpField(p));
    }

    [Fact]
    public void AlternateZeroChecksumWithOrdinaryRewrite()
    {
        var rng = new Random(11);
        for (int i = 0; i < 100; i++)
        {
            byte[] p = ChecksumTests.PacketWithTcpChecksumZero();
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(36), 0xFFFF);
            RewriteAndCheck(p, RandomUInt(rng), PickPort(rng), RandomUInt(rng), PickPort(rng));
        }
    }

    [Fact]
    public void WrongChecksumStaysWrong()
    {
        var rng = new Random(12);
        for (int i = 0; i < 200; i++)
        {
            byte[] p = RandomSpec(rng).Build();
            int ihl = (p[0] & 0x0F) * 4;
            p[ihl + 17] ^= 0x04; // corrupt the TCP checksum
            Assert.True(TcpPacket.TryParse(p, out var tcp));
            Assert.False(Checksum.VerifyTcp(p, tcp));

            TcpRewriter.Rewrite(p, tcp, RandomUInt(rng), PickPort(rng), RandomUInt(rng), PickPort(rng));

            Assert.True(TcpPacket.TryParse(p, out var after));
            Assert.False(Checksum.VerifyTcp(p, after));
            Assert.True(Checksum.VerifyIpv4Header(p));
        }
    }

    [Fact]
    public void RewritesFirstFragmentHeaders()
    {
        var spec = new PacketSpec { FlagsFragment = 0x2000, Flags = TcpFlags.Ack, Payload = new byte[24] };
        byte[] p = spec.Build();
        RewriteAndCheck(p, 0x0A000001, 1234, 0x0A000002, 5678);
    }
}
