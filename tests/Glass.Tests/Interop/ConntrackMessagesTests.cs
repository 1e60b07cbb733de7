using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Glass.Interop;
using Glass.Packets;
using Glass.Translator;
using static Glass.Interop.ConntrackMessages;
using static Glass.Interop.NfQueueMessages;

namespace Glass.Tests.Interop;

public sealed class ConntrackMessagesTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");

    // A dials router:60000 from 40001, B dials router:60001 from 50002.
    private static readonly OffloadedFlow Flow = new(
        new FlowTuple(PeerA, 40001, Router, 60000),
        new FlowTuple(PeerB, 50002, Router, 60001));

    private static Dictionary<ushort, byte[]> Attributes(ReadOnlySpan<byte> attrs)
    {
        var d = new Dictionary<ushort, byte[]>();
        var r = new NetlinkAttributeReader(attrs);
        while (r.TryNext(out var t, out var v))
            d[t] = v.ToArray();
        return d;
    }

    [Fact]
    public void ACreateRequestCarriesBothNatsLiberalTrackingAndOurMark()
    {
        var b = new byte[MaxRequestLength];
        var n = WriteCreate(b, seq: 7, Flow, mark: 0x474C0006, timeoutSeconds: 7500);
        var msg = b.AsSpan(0, n);

        Assert.Equal((uint)n, MemoryMarshal.Read<uint>(msg));
        Assert.Equal((ushort)(1 << 8 | 0), MemoryMarshal.Read<ushort>(msg.Slice(4))); // CTNETLINK, CT_NEW
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, MemoryMarshal.Read<ushort>(msg.Slice(6)));
        Assert.Equal(7u, MemoryMarshal.Read<uint>(msg.Slice(8)));
        Assert.Equal(2, msg[16]); // AF_INET

        var top = Attributes(msg.Slice(20));
        // The request's reply tuple is the original inverted; the kernel derives the NATed one.
        Assert.True(TryReadEntry(msg, out var kind, out var e));
        Assert.Equal(IPCTNL_MSG_CT_NEW, kind);
        Assert.Equal(Flow.Original, e.Original);
        Assert.Equal(new FlowTuple(Router, 60000, PeerA, 40001), e.Reply);
        Assert.Equal(6, e.Protocol);
        Assert.Equal(0x474C0006u, e.Mark);
        Assert.Equal(TCP_CONNTRACK_ESTABLISHED, e.TcpState);

        Assert.Equal(7500u, BinaryPrimitives.ReadUInt32BigEndian(top[CTA_TIMEOUT]));
        var status = BinaryPrimitives.ReadUInt32BigEndian(top[CTA_STATUS]);
        // A fixed timeout: no packet (a forged reset) can shorten it.
        Assert.Equal(IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED | IPS_FIXED_TIMEOUT, status);

        // DNAT to B, SNAT to the router port B dialled.
        var dnat = Attributes(top[CTA_NAT_DST]);
        Assert.Equal(PeerB, BinaryPrimitives.ReadUInt32BigEndian(dnat[CTA_NAT_V4_MINIP]));
        Assert.Equal(PeerB, BinaryPrimitives.ReadUInt32BigEndian(dnat[CTA_NAT_V4_MAXIP]));
        var dport = Attributes(dnat[CTA_NAT_PROTO]);
        Assert.Equal(50002, BinaryPrimitives.ReadUInt16BigEndian(dport[CTA_PROTONAT_PORT_MIN]));
        Assert.Equal(50002, BinaryPrimitives.ReadUInt16BigEndian(dport[CTA_PROTONAT_PORT_MAX]));
        var snat = Attributes(top[CTA_NAT_SRC]);
        Assert.Equal(Router, BinaryPrimitives.ReadUInt32BigEndian(snat[CTA_NAT_V4_MINIP]));
        Assert.Equal(60001, BinaryPrimitives.ReadUInt16BigEndian(Attributes(snat[CTA_NAT_PROTO])[CTA_PROTONAT_PORT_MIN]));

        // struct nf_ct_tcp_flags { flags, mask }: liberal; no window scaling or SACK in this flow.
        var tcp = Attributes(Attributes(top[CTA_PROTOINFO])[CTA_PROTOINFO_TCP]);
        const byte mask = IP_CT_TCP_FLAG_BE_LIBERAL | IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM;
        Assert.Equal(new byte[] { IP_CT_TCP_FLAG_BE_LIBERAL, mask }, tcp[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]);
        Assert.Equal(new byte[] { IP_CT_TCP_FLAG_BE_LIBERAL, mask }, tcp[CTA_PROTOINFO_TCP_FLAGS_REPLY]);
        Assert.False(tcp.ContainsKey(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL));
    }

    [Fact]
    public void ACreateRequestCarriesTheWindowScalesAndSackThePeersAgreedOn()
    {
        var b = new byte[MaxRequestLength];
        var n = WriteCreate(b, 1, Flow with { ScaleOriginal = 7, ScaleReply = 9, SackPermitted = true }, mark: 1, timeoutSeconds: 60);
        var tcp = Attributes(Attributes(Attributes(b.AsSpan(20, n - 20))[CTA_PROTOINFO])[CTA_PROTOINFO_TCP]);
        const byte all = IP_CT_TCP_FLAG_BE_LIBERAL | IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM;
        Assert.Equal(new byte[] { all, all }, tcp[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]);
        Assert.Equal(new byte[] { all, all }, tcp[CTA_PROTOINFO_TCP_FLAGS_REPLY]);
        Assert.Equal(new byte[] { 7 }, tcp[CTA_PROTOINFO_TCP_WSCALE_ORIGINAL]);
        Assert.Equal(new byte[] { 9 }, tcp[CTA_PROTOINFO_TCP_WSCALE_REPLY]);
    }

    [Fact]
    public void ATightenRequestUpdatesOnlyTheLiberalBitOfTheEntryItNames()
    {
        var b = new byte[MaxRequestLength];
        var n = WriteTighten(b, seq: 9, Flow.Original);
        var msg = b.AsSpan(0, n);
        Assert.Equal((ushort)(1 << 8 | 0), MemoryMarshal.Read<ushort>(msg.Slice(4))); // CTNETLINK, CT_NEW
        // Without NLM_F_CREATE the kernel only changes an existing entry (ENOENT otherwise).
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(msg.Slice(6)));
        var top = Attributes(msg.Slice(20));
        Assert.Equal(new ushort[] { CTA_TUPLE_ORIG, CTA_PROTOINFO }, top.Keys.Order().ToArray());
        var tcp = Attributes(Attributes(top[CTA_PROTOINFO])[CTA_PROTOINFO_TCP]);
        Assert.Equal(new ushort[] { CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY }, tcp.Keys.Order().ToArray());
        Assert.Equal(new byte[] { 0, IP_CT_TCP_FLAG_BE_LIBERAL }, tcp[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]);
        Assert.Equal(new byte[] { 0, IP_CT_TCP_FLAG_BE_LIBERAL }, tcp[CTA_PROTOINFO_TCP_FLAGS_REPLY]);
        Assert.True(TryReadEntryTupleOnly(msg, out var original));
        Assert.Equal(Flow.Original, original);
    }

    [Fact]
    public void ARefreshRequestReArmsAndFixesTheTimeoutOfTheEntryItNames()
    {
        var b = new byte[MaxRequestLength];
        var n = WriteRefresh(b, seq: 11, Flow.Original, timeoutSeconds: 7740);
        var msg = b.AsSpan(0, n);
        Assert.Equal((ushort)(1 << 8 | 0), MemoryMarshal.Read<ushort>(msg.Slice(4))); // CTNETLINK, CT_NEW
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(msg.Slice(6))); // an update only
        var top = Attributes(msg.Slice(20));
        Assert.Equal(new ushort[] { CTA_TUPLE_ORIG, CTA_STATUS, CTA_TIMEOUT }, top.Keys.Order().ToArray());
        Assert.Equal(7740u, BinaryPrimitives.ReadUInt32BigEndian(top[CTA_TIMEOUT]));
        // The whole status: ctnetlink clears the changeable bits a status leaves out.
        Assert.Equal(IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED | IPS_FIXED_TIMEOUT, BinaryPrimitives.ReadUInt32BigEndian(top[CTA_STATUS]));
        Assert.True(TryReadEntryTupleOnly(msg, out var original));
        Assert.Equal(Flow.Original, original);
    }

    private static bool TryReadEntryTupleOnly(ReadOnlySpan<byte> msg, out FlowTuple original)
    {
        original = default;
        var r = new NetlinkAttributeReader(msg.Slice(20));
        while (r.TryNext(out var t, out var v))
        {
            if (t != CTA_TUPLE_ORIG)
                continue;
            var tuple = Attributes(v);
            var ip = Attributes(tuple[CTA_TUPLE_IP]);
            var proto = Attributes(tuple[CTA_TUPLE_PROTO]);
            original = new FlowTuple(BinaryPrimitives.ReadUInt32BigEndian(ip[CTA_IP_V4_SRC]), BinaryPrimitives.ReadUInt16BigEndian(proto[CTA_PROTO_SRC_PORT]),
                BinaryPrimitives.ReadUInt32BigEndian(ip[CTA_IP_V4_DST]), BinaryPrimitives.ReadUInt16BigEndian(proto[CTA_PROTO_DST_PORT]));
            return true;
        }
        return false;
    }

    [Fact]
    public void NestedAttributesAreFlaggedAndPadded()
    {
        var b = new byte[MaxRequestLength];
        var n = WriteDelete(b, 1, Flow.Original);
        // CTA_TUPLE_ORIG { IP { src, dst }, PROTO { num (padded), sport, dport } }
        Assert.Equal(20 + 4 + (4 + 8 + 8) + (4 + 8 + 8 + 8), n);
        Assert.Equal(CTA_TUPLE_ORIG | NetlinkWriter.NLA_F_NESTED, MemoryMarshal.Read<ushort>(b.AsSpan(22)));
        Assert.Equal(n - 20, MemoryMarshal.Read<ushort>(b.AsSpan(20)));
        Assert.Equal((ushort)(1 << 8 | 2), MemoryMarshal.Read<ushort>(b.AsSpan(4))); // CT_DELETE
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(b.AsSpan(6)));
    }

    [Fact]
    public void AGetNamesOneEntryByItsOriginalTupleAndAsksForAnAck()
    {
        var b = new byte[MaxRequestLength];
        var get = b.AsSpan(0, WriteGet(b, 9, Flow.Original)).ToArray();
        var delete = new byte[MaxRequestLength];
        var n = WriteDelete(delete, 9, Flow.Original);
        Assert.Equal((ushort)(1 << 8 | 1), MemoryMarshal.Read<ushort>(get.AsSpan(4))); // CT_GET
        // Not a dump: the kernel looks the tuple up and answers with that entry, then the ack.
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(get.AsSpan(6)));
        Assert.Equal(9u, MemoryMarshal.Read<uint>(get.AsSpan(8)));
        // The same tuple attributes as the delete of that entry.
        Assert.Equal(delete.AsSpan(16, n - 16).ToArray(), get.AsSpan(16).ToArray());
    }

    [Fact]
    public void DumpsAndFlushesSelectByExactMark()
    {
        var b = new byte[MaxRequestLength];
        var n = WriteDumpByMark(b, 3, 0x474C0006);
        Assert.Equal(NLM_F_REQUEST | NLM_F_DUMP, MemoryMarshal.Read<ushort>(b.AsSpan(6)));
        Assert.Equal((ushort)(1 << 8 | 1), MemoryMarshal.Read<ushort>(b.AsSpan(4))); // CT_GET
        var a = Attributes(b.AsSpan(20, n - 20));
        Assert.Equal(0x474C0006u, BinaryPrimitives.ReadUInt32BigEndian(a[CTA_MARK]));
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(a[CTA_MARK_MASK]));

        n = WriteFlushByMark(b, 4, 0x474C0006);
        Assert.Equal((ushort)(1 << 8 | 2), MemoryMarshal.Read<ushort>(b.AsSpan(4)));
        Assert.Equal(NLM_F_REQUEST | NLM_F_ACK, MemoryMarshal.Read<ushort>(b.AsSpan(6)));
        a = Attributes(b.AsSpan(20, n - 20));
        Assert.False(a.ContainsKey(CTA_TUPLE_ORIG)); // no tuple: a flush, filtered by the mark
        Assert.Equal(0x474C0006u, BinaryPrimitives.ReadUInt32BigEndian(a[CTA_MARK]));
    }

    /// <summary>A destroy event as the kernel sends it: tuples (the reply already NATed), counters, mark.</summary>
    private static byte[] KernelEntry(ushort ctMessage, bool counters = true, byte state = 0, byte family = 2)
    {
        var b = new byte[512];
        var w = new NetlinkWriter(b, ConntrackMessages.MessageType(ctMessage), 0, 0, family);
        foreach (var (type, t) in new[] { (CTA_TUPLE_ORIG, Flow.Original), (CTA_TUPLE_REPLY, Flow.Reply) })
        {
            var tuple = w.Begin(type);
            var ip = w.Begin(CTA_TUPLE_IP);
            w.PutBe32(CTA_IP_V4_SRC, t.Source);
            w.PutBe32(CTA_IP_V4_DST, t.Destination);
            w.End(ip);
            var proto = w.Begin(CTA_TUPLE_PROTO);
            w.PutU8(CTA_PROTO_NUM, 6);
            w.PutBe16(CTA_PROTO_SRC_PORT, t.SourcePort);
            w.PutBe16(CTA_PROTO_DST_PORT, t.DestinationPort);
            w.End(proto);
            w.End(tuple);
        }
        if (counters)
        {
            Span<byte> v = stackalloc byte[8];
            foreach (var (type, packets, bytes) in new[] { (CTA_COUNTERS_ORIG, 10ul, 5_000_000_000ul), (CTA_COUNTERS_REPLY, 20ul, 1040ul) })
            {
                var c = w.Begin(type);
                BinaryPrimitives.WriteUInt64BigEndian(v, packets);
                w.Put(CTA_COUNTERS_PACKETS, v);
                BinaryPrimitives.WriteUInt64BigEndian(v, bytes);
                w.Put(CTA_COUNTERS_BYTES, v);
                w.End(c);
            }
        }
        if (state != 0)
        {
            var info = w.Begin(CTA_PROTOINFO);
            var tcp = w.Begin(CTA_PROTOINFO_TCP);
            w.PutU8(CTA_PROTOINFO_TCP_STATE, state);
            w.End(tcp);
            w.End(info);
        }
        w.PutBe32(CTA_MARK, 0x474C0006);
        return b.AsSpan(0, w.Finish()).ToArray();
    }

    [Fact]
    public void EventsAndDumpPartsDecodeToTheEntryWithItsCounters()
    {
        Assert.True(TryReadEntry(KernelEntry(IPCTNL_MSG_CT_DELETE), out var kind, out var e));
        Assert.Equal(IPCTNL_MSG_CT_DELETE, kind);
        Assert.Equal(Flow.Original, e.Original);
        Assert.Equal(Flow.Reply, e.Reply);
        Assert.Equal(0x474C0006u, e.Mark);
        Assert.True(e.HasCounters);
        Assert.Equal((10ul, 5_000_000_000ul, 20ul, 1040ul), (e.OriginalPackets, e.OriginalBytes, e.ReplyPackets, e.ReplyBytes));

        Assert.True(TryReadEntry(KernelEntry(IPCTNL_MSG_CT_NEW, counters: false, state: TCP_CONNTRACK_TIME_WAIT), out kind, out e));
        Assert.Equal(IPCTNL_MSG_CT_NEW, kind);
        Assert.False(e.HasCounters);
        Assert.Equal(TCP_CONNTRACK_TIME_WAIT, e.TcpState);
    }

    [Fact]
    public void TruncatedForeignOrIncompleteMessagesAreRefusedWithoutThrowing()
    {
        var good = KernelEntry(IPCTNL_MSG_CT_NEW);
        for (var len = 0; len < good.Length; len++)
        {
            var cut = good[..len];
            if (len >= 4)
                MemoryMarshal.Write(cut.AsSpan(), (uint)len);
            // Either refused, or (once both tuples fit) read with what is there.
            if (TryReadEntry(cut, out _, out var e))
                Assert.Equal(Flow.Original, e.Original);
        }
        Assert.False(TryReadEntry(KernelEntry(IPCTNL_MSG_CT_NEW, family: 10), out _, out _)); // IPv6
        var queue = (byte[])good.Clone();
        MemoryMarshal.Write(queue.AsSpan(4), (ushort)(3 << 8)); // an NFQUEUE message
        Assert.False(TryReadEntry(queue, out _, out _));

        var random = new Random(5);
        var buf = new byte[300];
        for (var i = 0; i < 20_000; i++)
        {
            random.NextBytes(buf);
            MemoryMarshal.Write(buf.AsSpan(), (uint)random.Next(0, buf.Length + 1));
            MemoryMarshal.Write(buf.AsSpan(4), (ushort)(1 << 8 | random.Next(0, 3)));
            buf[16] = 2;
            TryReadEntry(buf.AsSpan(0, random.Next(0, buf.Length + 1)), out _, out _);
        }
    }

    [Fact]
    public void AnErrorAnswerCarriesTheKernelsErrno()
    {
        // struct nlmsgerr { int error; struct nlmsghdr msg; } after the header.
        var b = new byte[36];
        MemoryMarshal.Write(b.AsSpan(), 36u);
        MemoryMarshal.Write(b.AsSpan(4), NLMSG_ERROR);
        MemoryMarshal.Write(b.AsSpan(16), -Libc.EEXIST);
        Assert.True(TryReadMessage(b, out var type, out var msg, out _));
        Assert.Equal(NLMSG_ERROR, type);
        Assert.True(TryReadError(msg, out var errno));
        Assert.Equal(Libc.EEXIST, errno);
    }
}
