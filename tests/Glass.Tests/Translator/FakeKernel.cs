using Glass.Packets;
using Glass.Translator;

namespace Glass.Tests.Translator;

/// <summary>Records what the engine would have sent, instead of a raw socket.</summary>
internal sealed class FakeKernel : IPacketSender
{
    public List<(byte[] Packet, uint Destination)> Sent { get; } = new();
    /// <summary>What the kernel was asked to finish for each sent packet, by index.</summary>
    public List<SendOffload> Offloads { get; } = new();
    public bool Refuse { get; set; }
    /// <summary>Behave like a raw socket: refuse packets that need the kernel to finish them.</summary>
    public bool RefuseOffload { get; set; }

    public bool Send(ReadOnlySpan<byte> packet, uint destination) => Send(packet, destination, default);

    public bool Send(ReadOnlySpan<byte> packet, uint destination, SendOffload offload)
    {
        if (Refuse || (RefuseOffload && !offload.IsNone))
            return false;
        Sent.Add((packet.ToArray(), destination));
        Offloads.Add(offload);
        return true;
    }

    /// <summary>
    /// Parses a sent packet and checks its checksums as the receiver would see them: a partial
    /// TCP checksum is first finished as the kernel does on the way out (on a copy).
    /// </summary>
    public TcpPacket Parse(int index)
    {
        var packet = Sent[index].Packet;
        Assert.True(TcpPacket.TryParse(packet, out var tcp), "the engine sent an unparsable packet");
        Assert.True(Checksum.VerifyIpv4Header(packet.AsSpan(0, tcp.IpHeaderLength)), "bad IPv4 header checksum");
        if (Offloads[index].ChecksumPartial)
        {
            Assert.Equal(Checksum.PartialPseudoHeader(tcp.SourceAddress, tcp.DestinationAddress, tcp.TotalLength - tcp.TcpOffset),
                System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(tcp.TcpOffset + 16)));
            packet = (byte[])packet.Clone();
            Checksum.CompletePartialTcp(packet, tcp);
        }
        Assert.True(Checksum.VerifyTcp(packet, tcp), "bad TCP checksum");
        return tcp;
    }
}

internal sealed class FakeClock : IClock
{
    public long NowMilliseconds { get; set; } = 1_000_000;

    public void Advance(TimeSpan t) => NowMilliseconds += (long)t.TotalMilliseconds;
}

/// <summary>Builds IPv4/TCP packets from scratch, with correct checksums, for feeding the engine.</summary>
internal static class TestPackets
{
    public static byte[] Tcp(uint src, ushort sport, uint dst, ushort dport, uint seq, uint ack, TcpFlags flags,
        ushort window = 64240, byte[]? options = null, byte[]? payload = null)
    {
        options ??= Array.Empty<byte>();
        payload ??= Array.Empty<byte>();
        Assert.True(options.Length % 4 == 0);
        var tcpLen = 20 + options.Length;
        var p = new byte[20 + tcpLen + payload.Length];
        p[0] = 0x45;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[6] = 0x40; // DF
        p[8] = 64;
        p[9] = 6;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(12), src);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(16), dst);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, 20)));
        var t = p.AsSpan(20);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(t, sport);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(t.Slice(2), dport);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(t.Slice(4), seq);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(t.Slice(8), ack);
        t[12] = (byte)((tcpLen / 4) << 4);
        t[13] = (byte)flags;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(t.Slice(14), window);
        options.CopyTo(t.Slice(20));
        payload.CopyTo(t.Slice(tcpLen));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(t.Slice(16), Checksum.ComputeTcp(src, dst, t));
        return p;
    }

    /// <summary>
    /// The packet as a CHECKSUM_PARTIAL skb carries it: the TCP checksum field holds the folded
    /// pseudo-header sum (the kernel's ~tcp_v4_check(len, saddr, daddr, 0)).
    /// </summary>
    public static byte[] Partial(byte[] packet)
    {
        Assert.True(TcpPacket.TryParse(packet, out var tcp));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(tcp.TcpOffset + 16),
            Checksum.PartialPseudoHeader(tcp.SourceAddress, tcp.DestinationAddress, tcp.TotalLength - tcp.TcpOffset));
        return packet;
    }

    /// <summary>SYN options as Linux sends them: MSS, SACK-permitted, timestamps, NOP, window scale.</summary>
    public static byte[] LinuxSynOptions(ushort mss, uint tsVal, byte wscale) => new byte[]
    {
        2, 4, (byte)(mss >> 8), (byte)mss,
        4, 2, 8, 10, (byte)(tsVal >> 24), (byte)(tsVal >> 16), (byte)(tsVal >> 8), (byte)tsVal, 0, 0, 0, 0,
        1, 3, 3, wscale,
    };
}
