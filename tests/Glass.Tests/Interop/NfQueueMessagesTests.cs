using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Glass.Interop;
using static Glass.Interop.NfQueueMessages;

namespace Glass.Tests.Interop;

public sealed class NfQueueMessagesTests
{
    [Fact]
    public void ABatchDropVerdictIsLaidOutAsTheKernelExpects()
    {
        var b = new byte[64];
        var n = WriteVerdict(b, seq: 9, queue: 6, packetId: 0x01020304, verdict: NF_DROP, batch: true);

        Assert.Equal(32, n); // 16 nlmsghdr + 4 nfgenmsg + 12 attribute
        Assert.Equal(32u, MemoryMarshal.Read<uint>(b));
        Assert.Equal((ushort)(3 << 8 | 3), MemoryMarshal.Read<ushort>(b.AsSpan(4))); // NFNL_SUBSYS_QUEUE, VERDICT_BATCH
        Assert.Equal(NLM_F_REQUEST, MemoryMarshal.Read<ushort>(b.AsSpan(6)));
        Assert.Equal(9u, MemoryMarshal.Read<uint>(b.AsSpan(8)));
        Assert.Equal(new byte[] { 0, 0, 0, 6 }, b[16..20]); // AF_UNSPEC, v0, queue 6 big-endian
        Assert.Equal(12, MemoryMarshal.Read<ushort>(b.AsSpan(20)));
        Assert.Equal(NFQA_VERDICT_HDR, MemoryMarshal.Read<ushort>(b.AsSpan(22)));
        Assert.Equal(NF_DROP, BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(24)));
        Assert.Equal(0x01020304u, BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(28)));
    }

    [Fact]
    public void ConfigMessagesAskForAcknowledgementAndPadAttributes()
    {
        var b = new byte[64];
        var n = WriteConfigParams(b, 1, 300, 0xFFFF, 4096);
        // params (5 bytes) pads to 8 + 4 header; maxlen 4 + 4.
        Assert.Equal(20 + 12 + 8, n);
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(b.AsSpan(6)));
        Assert.Equal(300, BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(18)));
        Assert.Equal(9, MemoryMarshal.Read<ushort>(b.AsSpan(20)));
        Assert.Equal(NFQNL_COPY_PACKET, b[28]);
        Assert.Equal(0, b[29] | b[30] | b[31]);
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(36)));

        n = WriteConfigCommand(b, 2, 6, NFQNL_CFG_CMD_BIND);
        Assert.Equal(28, n);
        Assert.Equal(NFQNL_CFG_CMD_BIND, b[24]);
        Assert.Equal(2, BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(26))); // AF_INET
    }

    private static byte[] PacketMessage(uint id, byte[] payload, bool withHeader = true, params (ushort Type, byte[] Value)[] extra)
    {
        var list = new List<byte>();
        void Attr(ushort type, byte[] value)
        {
            var a = new byte[(4 + value.Length + 3) & ~3];
            MemoryMarshal.Write(a, (ushort)(4 + value.Length));
            MemoryMarshal.Write(a.AsSpan(2), type);
            value.CopyTo(a, 4);
            list.AddRange(a);
        }
        var hdr = new byte[7];
        BinaryPrimitives.WriteUInt32BigEndian(hdr, id);
        hdr[4] = 0x08; // ETH_P_IP
        if (withHeader)
            Attr(NFQA_PACKET_HDR, hdr);
        if (!extra.Any(e => e.Type == NFQA_IFINDEX_INDEV))
            Attr(NFQA_IFINDEX_INDEV, Be32(2)); // as from eth0 unless a test says otherwise
        foreach (var (type, value) in extra)
            Attr(type, value);
        Attr(NFQA_PAYLOAD, payload);
        var m = new byte[20 + list.Count];
        MemoryMarshal.Write(m, (uint)m.Length);
        MemoryMarshal.Write(m.AsSpan(4), MessageType(NFQNL_MSG_PACKET));
        m[16] = 2;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(18), 6);
        list.CopyTo(m, 20);
        return m;
    }

    [Fact]
    public void AQueuedPacketYieldsItsIdAndPayload()
    {
        var payload = Enumerable.Range(0, 41).Select(i => (byte)i).ToArray();
        var m = PacketMessage(77, payload);

        Assert.True(TryReadMessage(m, out var type, out var msg, out var consumed));
        Assert.Equal(MessageType(NFQNL_MSG_PACKET), type);
        Assert.Equal(m.Length, consumed);
        Assert.True(TryReadPacket(msg, out var id, out var queue, out var offset, out var length));
        Assert.Equal((77u, (ushort)6), (id, queue));
        Assert.Equal(payload, msg.Slice(offset, length).ToArray());
    }

    private static byte[] Be32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return b;
    }

    [Fact]
    public void AskingForWholeGsoPacketsSetsTheFlagUnderItsMask()
    {
        var b = new byte[64];
        var n = WriteConfigFlags(b, seq: 5, queue: 6, flags: NFQA_CFG_F_GSO, mask: NFQA_CFG_F_GSO);

        Assert.Equal(20 + 8 + 8, n);
        Assert.Equal((uint)n, MemoryMarshal.Read<uint>(b));
        Assert.Equal((ushort)(3 << 8 | 2), MemoryMarshal.Read<ushort>(b.AsSpan(4))); // NFNL_SUBSYS_QUEUE, CONFIG
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(b.AsSpan(6)));
        Assert.Equal(6, BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(18)));
        // NFQA_CFG_MASK (4) then NFQA_CFG_FLAGS (5), each __be32; F_GSO is 1 << 2.
        Assert.Equal((8, 4), (MemoryMarshal.Read<ushort>(b.AsSpan(20)), MemoryMarshal.Read<ushort>(b.AsSpan(22))));
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(24)));
        Assert.Equal((8, 5), (MemoryMarshal.Read<ushort>(b.AsSpan(28)), MemoryMarshal.Read<ushort>(b.AsSpan(30))));
        Assert.Equal(4u, BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(32)));
    }

    [Fact]
    public void APacketCarriesItsSkbInfoAndCaptureLength()
    {
        var payload = new byte[40];
        var m = PacketMessage(9, payload, true, (NFQA_SKB_INFO, Be32(NFQA_SKB_CSUMNOTREADY | NFQA_SKB_GSO)));
        Assert.True(TryReadPacket(m, out QueuedPacket p));
        Assert.Equal((9u, (ushort)6, 40), (p.Id, p.Queue, p.PayloadLength));
        Assert.True(p.ChecksumPartial);
        Assert.True(p.Gso);
        Assert.False(p.Truncated);
        Assert.Equal(payload, m.AsSpan(p.PayloadOffset, p.PayloadLength).ToArray());

        // The kernel adds NFQA_CAP_LEN only when it copied less than the whole packet.
        Assert.True(TryReadPacket(PacketMessage(10, payload, true, (NFQA_CAP_LEN, Be32(65535))), out p));
        Assert.True(p.Truncated);
        Assert.False(p.ChecksumPartial || p.Gso);
        Assert.True(TryReadPacket(PacketMessage(11, payload, true, (NFQA_SKB_INFO, Be32(NFQA_SKB_CSUM_NOTVERIFIED))), out p));
        Assert.False(p.ChecksumPartial || p.Gso || p.Truncated);

        // A 32-bit attribute shorter than 4 bytes is malformed.
        Assert.False(TryReadPacket(PacketMessage(12, payload, true, (NFQA_SKB_INFO, new byte[2])), out p));
        Assert.False(TryReadPacket(PacketMessage(12, payload, true, (NFQA_CAP_LEN, new byte[3])), out p));
    }

    [Fact]
    public void APacketNamesTheDeviceItCameInOn()
    {
        var payload = new byte[40];
        Assert.True(TryReadPacket(PacketMessage(13, payload), out QueuedPacket p));
        Assert.Equal(2u, p.InDevice);
        // What a process on the router's host sent loops back through lo (ifindex 1).
        Assert.True(TryReadPacket(PacketMessage(14, payload, true, (NFQA_IFINDEX_INDEV, Be32(1))), out p));
        Assert.Equal(1u, p.InDevice);
        Assert.False(TryReadPacket(PacketMessage(15, payload, true, (NFQA_IFINDEX_INDEV, new byte[2])), out p));
    }

    [Fact]
    public void MessagesWithoutAPacketHeaderOrWithBadLengthsAreRejected()
    {
        Assert.False(TryReadPacket(PacketMessage(1, new byte[20], withHeader: false), out _, out _, out _, out _));

        var m = PacketMessage(1, new byte[20]);
        MemoryMarshal.Write(m.AsSpan(20), (ushort)2000); // first attribute claims more than there is
        Assert.False(TryReadPacket(m, out _, out _, out _, out _));

        var shortLen = PacketMessage(1, new byte[20]);
        MemoryMarshal.Write(shortLen.AsSpan(20), (ushort)2); // shorter than its own header
        Assert.False(TryReadPacket(shortLen, out _, out _, out _, out _));

        Assert.False(TryReadMessage(new byte[10], out _, out _, out _));
        var lying = PacketMessage(1, new byte[20]);
        MemoryMarshal.Write(lying, (uint)(lying.Length + 1));
        Assert.False(TryReadMessage(lying, out _, out _, out _));
    }

    [Fact]
    public void AnErrorMessageCarriesItsErrno()
    {
        var m = new byte[36];
        MemoryMarshal.Write(m, 36u);
        MemoryMarshal.Write(m.AsSpan(4), NLMSG_ERROR);
        MemoryMarshal.Write(m.AsSpan(16), -16);
        Assert.True(TryReadError(m, out var errno));
        Assert.Equal(16, errno);
    }

    [Fact]
    public void RandomBytesNeverThrow()
    {
        var rng = new Random(3);
        var buf = new byte[200];
        for (var i = 0; i < 50_000; i++)
        {
            rng.NextBytes(buf);
            var span = buf.AsSpan(0, rng.Next(buf.Length));
            if (TryReadMessage(span, out _, out var msg, out _))
                TryReadPacket(msg, out _, out _, out _, out _);
            TryReadPacket(span, out _, out _, out _, out _);
            TryReadPacket(span, out QueuedPacket _);
        }
    }
}
