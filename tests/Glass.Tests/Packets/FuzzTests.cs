using Glass.Packets;

namespace Glass.Tests.Packets;

/// <summary>Attacker bytes must never throw: seeded random inputs through every parser.</summary>
public class FuzzTests
{
    private const int Iterations = 100_000;

    [Fact]
    public void RandomOptionBlobsNeverThrow()
    {
        var rng = new Random(20180);
        byte[] buffer = new byte[64];
        int parsed = 0, found = 0;
        for (int i = 0; i < Iterations; i++)
        {
            int len = rng.Next(0, buffer.Length + 1);
            var blob = buffer.AsSpan(0, len);
            rng.NextBytes(blob);
            // Bias towards small kinds and lengths so the walk gets past the first option often.
            if (rng.Next(2) == 0)
            {
                for (int j = 0; j < len; j++)
                    blob[j] = (byte)(blob[j] % 12);
            }

            if (TcpSynOptions.TryParse(blob, out var o))
            {
                parsed++;
                Assert.InRange(o.WindowScale, (sbyte)-1, (sbyte)14);
                if (!o.HasTimestamps)
                {
                    Assert.Equal(0u, o.TsVal);
                    Assert.Equal(0u, o.TsEcr);
                }
            }
            else
            {
                Assert.Equal((sbyte)-1, o.WindowScale);
            }
            if (TcpTimestamps.TryFind(blob, out _, out _))
                found++;
        }
        // The generator must reach both outcomes, or the test proves little.
        Assert.InRange(parsed, 1000, Iterations - 1000);
        Assert.True(found > 100, $"only {found} blobs held timestamps");
    }

    [Fact]
    public void RandomAndMutatedPacketsNeverThrow()
    {
        var rng = new Random(791793);
        byte[] scratch = new byte[128];
        int parsed = 0;
        for (int i = 0; i < Iterations; i++)
        {
            byte[] p;
            if (rng.Next(4) == 0)
            {
                p = new byte[rng.Next(0, 128)];
                rng.NextBytes(p);
                if (p.Length > 0)
                    p[0] = (byte)(0x40 | (p[0] & 0x0F)); // keep version 4 so parsing goes deeper
            }
            else
            {
                p = Mutate(rng, ValidPacket(rng));
            }

            bool ok = TcpPacket.TryParse(p, out var tcp);
            Checksum.VerifyIpv4Header(p);
            if (!ok)
                continue;
            parsed++;

            Assert.InRange(tcp.IpHeaderLength, 20, 60);
            Assert.InRange(tcp.TcpHeaderLength, 20, 60);
            Assert.InRange(tcp.TotalLength, tcp.IpHeaderLength + tcp.TcpHeaderLength, p.Length);
            Assert.Equal(tcp.TotalLength - tcp.IpHeaderLength - tcp.TcpHeaderLength, tcp.PayloadLength);
            Assert.True(tcp.OptionsOffset + tcp.OptionsLength <= tcp.TotalLength);

            Checksum.VerifyTcp(p, tcp);
            var options = p.AsSpan(tcp.OptionsOffset, tcp.OptionsLength);
            TcpSynOptions.TryParse(options, out _);
            TcpTimestamps.TryFind(options, out _, out _);

            // Anything that parses can be rewritten without throwing, and the rewrite keeps it parseable.
            p.CopyTo(scratch, 0);
            var copy = scratch.AsSpan(0, p.Length);
            TcpRewriter.Rewrite(copy, tcp, (uint)rng.Next(), (ushort)rng.Next(65536), (uint)rng.Next(), (ushort)rng.Next(65536));
            Assert.True(TcpPacket.TryParse(copy, out _));
        }
        Assert.True(parsed > Iterations / 10, $"only {parsed} packets parsed");
    }

    private static byte[] ValidPacket(Random rng)
    {
        var spec = new PacketSpec
        {
            IpOptions = new byte[4 * rng.Next(0, 3)],
            TcpOptions = new byte[4 * rng.Next(0, 6)],
            Payload = new byte[rng.Next(0, 12)],
            Padding = rng.Next(0, 3),
            Flags = (TcpFlags)rng.Next(256),
            FillChecksums = rng.Next(8) == 0,
        };
        rng.NextBytes(spec.TcpOptions);
        return spec.Build();
    }

    private static byte[] Mutate(Random rng, byte[] p)
    {
        int edits = rng.Next(0, 4);
        for (int e = 0; e < edits && p.Length > 0; e++)
        {
            int at = rng.Next(p.Length);
            p[at] = rng.Next(3) == 0 ? (byte)rng.Next(256) : (byte)(p[at] ^ (1 << rng.Next(8)));
        }
        if (rng.Next(4) == 0)
            p = p[..rng.Next(0, p.Length + 1)];
        return p;
    }
}
