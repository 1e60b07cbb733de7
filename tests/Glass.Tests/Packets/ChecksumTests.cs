using System.Buffers.Binary;
using Glass.Packets;

namespace Glass.Tests.Packets;

public class ChecksumTests
{
    [Fact]
    public void Rfc1071WorkedExample()
    {
        // RFC 1071 section 3: these bytes sum to 0xDDF2, so the checksum is 0x220D.
        byte[] data = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7];
        Assert.Equal((ushort)0x220D, Checksum.Compute(data));
    }

    [Fact]
    public void KnownIpv4HeaderVerifies()
    {
        byte[] header = Hex.Bytes("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7");
        Assert.True(Checksum.VerifyIpv4Header(header));
        Assert.Equal((ushort)0, Checksum.Compute(header));
        header[10] = header[11] = 0;
        Assert.Equal((ushort)0xB861, Checksum.Compute(header));
        Assert.False(Checksum.VerifyIpv4Header(header));
    }

    [Fact]
    public void EmptyAndZeroDataChecksumToAllOnes()
    {
        Assert.Equal((ushort)0xFFFF, Checksum.Compute([]));
        Assert.Equal((ushort)0xFFFF, Checksum.Compute(new byte[37]));
    }

    [Fact]
    public void OddLengthPadsLastByteWithZero()
    {
        Assert.Equal((ushort)0x54FF, Checksum.Compute([0xAB]));
        Assert.Equal(Checksum.Compute([1, 2, 3, 0]), Checksum.Compute([1, 2, 3]));
    }

    [Fact]
    public void MatchesReferenceForAllLengthsAndRandomData()
    {
        var rng = new Random(1071);
        for (int len = 0; len <= 300; len++)
        {
            for (int k = 0; k < 4; k++)
            {
                byte[] data = new byte[len];
                if (k == 3)
                    Array.Fill(data, (byte)0xFF); // carries on every word
                else
                    rng.NextBytes(data);
                ushort expected = (ushort)~ReferenceChecksum.Sum(data, 0, len);
                Assert.Equal(expected, Checksum.Compute(data));
            }
        }
    }

    [Fact]
    public void LargeBufferMatchesReference()
    {
        var rng = new Random(7);
        byte[] data = new byte[65535];
        rng.NextBytes(data);
        Assert.Equal((ushort)~ReferenceChecksum.Sum(data, 0, data.Length), Checksum.Compute(data));
        Array.Fill(data, (byte)0xFF);
        Assert.Equal((ushort)~ReferenceChecksum.Sum(data, 0, data.Length), Checksum.Compute(data));
    }

    [Fact]
    public void ComputeTcpMatchesReferenceAndVerifiesToZero()
    {
        var rng = new Random(9293);
        for (int i = 0; i < 500; i++)
        {
            var spec = new PacketSpec
            {
                Source = (uint)rng.NextInt64(0, 1L << 32),
                Destination = (uint)rng.NextInt64(0, 1L << 32),
                Payload = new byte[rng.Next(0, 200)],
            };
            rng.NextBytes(spec.Payload);
            byte[] p = spec.Build();
            var segment = p.AsSpan(20);

            Assert.Equal((ushort)0, Checksum.ComputeTcp(spec.Source, spec.Destination, segment));
            ushort stored = BinaryPrimitives.ReadUInt16BigEndian(segment[16..]);
            segment[16] = segment[17] = 0;
            Assert.Equal(stored, Checksum.ComputeTcp(spec.Source, spec.Destination, segment));
        }
    }

    [Fact]
    public void PseudoHeaderCountsAddressesAndLength()
    {
        byte[] p = new PacketSpec().Build();
        var segment = p.AsSpan(20);
        Assert.Equal((ushort)0, Checksum.ComputeTcp(0xC0000201, 0xCB007101, segment));
        Assert.NotEqual((ushort)0, Checksum.ComputeTcp(0xC0000202, 0xCB007101, segment));
        Assert.NotEqual((ushort)0, Checksum.ComputeTcp(0xC0000201, 0xCB007100, segment));
        // Swapping addresses keeps the sum (addition commutes), as RFC 1071 promises.
        Assert.Equal((ushort)0, Checksum.ComputeTcp(0xCB007101, 0xC0000201, segment));
    }

    [Fact]
    public void VerifyIpv4HeaderUsesIhlAndRejectsGarbage()
    {
        var spec = new PacketSpec { IpOptions = [0x94, 4, 0, 0, 1, 1, 1, 0], Payload = [1, 2, 3] };
        byte[] p = spec.Build();
        Assert.True(Checksum.VerifyIpv4Header(p));
        Assert.True(Checksum.VerifyIpv4Header(p.AsSpan(0, 28)));
        Assert.False(Checksum.VerifyIpv4Header(p.AsSpan(0, 27)));   // shorter than IHL
        Assert.False(Checksum.VerifyIpv4Header(p.AsSpan(0, 19)));
        Assert.False(Checksum.VerifyIpv4Header([]));

        byte[] badIhl = (byte[])p.Clone();
        badIhl[0] = 0x44;
        Assert.False(Checksum.VerifyIpv4Header(badIhl));

        for (int i = 0; i < 28; i++)
        {
            byte[] flipped = (byte[])p.Clone();
            flipped[i] ^= 0x10; // on byte 0 this hits the version nibble, leaving IHL intact
            Assert.False(Checksum.VerifyIpv4Header(flipped), $"flip at {i} verified");
        }
    }

    [Fact]
    public void VerifyTcpDetectsCorruptionAnywhereInTheSegment()
    {
        var spec = new PacketSpec { TcpOptions = [2, 4, 5, 0xB4], Payload = [10, 20, 30, 40, 50], Padding = 6 };
        byte[] p = spec.Build();
        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.True(Checksum.VerifyTcp(p, tcp));
        for (int i = tcp.TcpOffset; i < tcp.TotalLength; i++)
        {
            byte[] flipped = (byte[])p.Clone();
            flipped[i] ^= 0x01;
            Assert.False(Checksum.VerifyTcp(flipped, tcp), $"flip at {i} verified");
        }

        // Padding past the total length is outside the checksum.
        byte[] padded = (byte[])p.Clone();
        padded[^1] ^= 0xFF;
        Assert.True(Checksum.VerifyTcp(padded, tcp));

        // The pseudo-header addresses count.
        byte[] moved = (byte[])p.Clone();
        moved[15] ^= 1;
        Assert.True(TcpPacket.TryParse(moved, out var movedTcp));
        Assert.False(Checksum.VerifyTcp(moved, movedTcp));
    }

    [Fact]
    public void VerifyTcpRejectsMismatchedSpan()
    {
        byte[] p = new PacketSpec().Build();
        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.False(Checksum.VerifyTcp(p.AsSpan(0, 39), tcp));
        Assert.False(Checksum.VerifyTcp(p, default));
    }

    [Fact]
    public void AlternateZeroChecksumVerifies()
    {
        // 0x0000 and 0xFFFF are both one's complement zero: a stored 0xFFFF where 0x0000 is correct still verifies.
        byte[] p = PacketWithTcpChecksumZero();
        Assert.Equal((ushort)0, ReferenceChecksum.TcpField(p));
        Assert.True(TcpPacket.TryParse(p, out var tcp));
        Assert.True(Checksum.VerifyTcp(p, tcp));
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(36), 0xFFFF);
        Assert.True(Checksum.VerifyTcp(p, tcp));
    }

    /// <summary>A valid packet whose TCP checksum is 0x0000, steered there through the urgent pointer.</summary>
    internal static byte[] PacketWithTcpChecksumZero()
    {
        var spec = new PacketSpec { Flags = TcpFlags.Ack, Payload = [1, 2, 3, 4, 5, 6, 7] };
        byte[] p = spec.Build();
        ushort sum = (ushort)~ReferenceChecksum.TcpField(p);
        // Adding ~sum to the urgent pointer brings the data sum to 0xFFFF, so the checksum becomes 0.
        spec.Urgent = ReferenceChecksum.Add(spec.Urgent, (ushort)~sum);
        return spec.Build();
    }
}
