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

    private static byte[] PacketMessage(uint id, byte[] payload, bool withHeader = true)
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
        Attr(5, new byte[] { 1, 0, 0, 0 }); // NFQA_IFINDEX_INDEV, skipped
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
        }
    }
}
