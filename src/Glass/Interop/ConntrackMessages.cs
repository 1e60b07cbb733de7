using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Glass.Translator;
using static Glass.Interop.NfQueueMessages;

namespace Glass.Interop;

/// <summary>What a ctnetlink dump or event says about one conntrack entry.</summary>
internal struct ConntrackEntry
{
    public FlowTuple Original;
    public FlowTuple Reply;
    public byte Protocol;
    public uint Mark;
    /// <summary>TCP_CONNTRACK_* from CTA_PROTOINFO; 0 (NONE) when the message carried none.</summary>
    public byte TcpState;
    public bool HasCounters;
    public ulong OriginalPackets, OriginalBytes, ReplyPackets, ReplyBytes;
}

/// <summary>
/// Encoding and decoding of ctnetlink (conntrack over nfnetlink) messages, free of sockets so it is
/// unit-tested. Names and values from linux/netfilter/nfnetlink_conntrack.h,
/// linux/netfilter/nf_conntrack_common.h, nf_conntrack_tcp.h and linux/netfilter/nfnetlink.h.
/// </summary>
/// <remarks>
/// An entry, as the attributes nest (every value big-endian):
/// <code>
/// CTA_TUPLE_ORIG / CTA_TUPLE_REPLY
///   CTA_TUPLE_IP    { CTA_IP_V4_SRC u32, CTA_IP_V4_DST u32 }
///   CTA_TUPLE_PROTO { CTA_PROTO_NUM u8, CTA_PROTO_SRC_PORT u16, CTA_PROTO_DST_PORT u16 }
/// CTA_NAT_SRC / CTA_NAT_DST
///   CTA_NAT_V4_MINIP u32, CTA_NAT_V4_MAXIP u32, CTA_NAT_PROTO { CTA_PROTONAT_PORT_MIN u16, _MAX u16 }
/// CTA_PROTOINFO { CTA_PROTOINFO_TCP { STATE u8, FLAGS_ORIGINAL/REPLY struct nf_ct_tcp_flags { u8 flags; u8 mask; } } }
/// CTA_COUNTERS_ORIG / _REPLY { CTA_COUNTERS_PACKETS u64, CTA_COUNTERS_BYTES u64 }
/// CTA_STATUS u32, CTA_TIMEOUT u32 (seconds), CTA_MARK u32, CTA_MARK_MASK u32
/// </code>
/// </remarks>
internal static class ConntrackMessages
{
    // linux/netfilter/nfnetlink.h
    public const int NFNL_SUBSYS_CTNETLINK = 1;
    public const uint NFNLGRP_CONNTRACK_NEW = 1;
    public const uint NFNLGRP_CONNTRACK_UPDATE = 2;
    public const uint NFNLGRP_CONNTRACK_DESTROY = 3;

    // linux/netlink.h
    public const ushort NLM_F_MULTI = 0x02;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;
    public const ushort NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH

    // enum cntl_msg_types
    public const ushort IPCTNL_MSG_CT_NEW = 0;
    public const ushort IPCTNL_MSG_CT_GET = 1;
    public const ushort IPCTNL_MSG_CT_DELETE = 2;

    // enum ctattr_type
    public const ushort CTA_TUPLE_ORIG = 1;
    public const ushort CTA_TUPLE_REPLY = 2;
    public const ushort CTA_STATUS = 3;
    public const ushort CTA_PROTOINFO = 4;
    public const ushort CTA_NAT_SRC = 6;
    public const ushort CTA_TIMEOUT = 7;
    public const ushort CTA_MARK = 8;
    public const ushort CTA_COUNTERS_ORIG = 9;
    public const ushort CTA_COUNTERS_REPLY = 10;
    public const ushort CTA_NAT_DST = 13;
    public const ushort CTA_MARK_MASK = 21;

    // enum ctattr_tuple, ctattr_ip, ctattr_l4proto
    public const ushort CTA_TUPLE_IP = 1;
    public const ushort CTA_TUPLE_PROTO = 2;
    public const ushort CTA_IP_V4_SRC = 1;
    public const ushort CTA_IP_V4_DST = 2;
    public const ushort CTA_PROTO_NUM = 1;
    public const ushort CTA_PROTO_SRC_PORT = 2;
    public const ushort CTA_PROTO_DST_PORT = 3;

    // enum ctattr_nat, ctattr_protonat
    public const ushort CTA_NAT_V4_MINIP = 1;
    public const ushort CTA_NAT_V4_MAXIP = 2;
    public const ushort CTA_NAT_PROTO = 3;
    public const ushort CTA_PROTONAT_PORT_MIN = 1;
    public const ushort CTA_PROTONAT_PORT_MAX = 2;

    // enum ctattr_protoinfo, ctattr_protoinfo_tcp, ctattr_counters
    public const ushort CTA_PROTOINFO_TCP = 1;
    public const ushort CTA_PROTOINFO_TCP_STATE = 1;
    public const ushort CTA_PROTOINFO_TCP_WSCALE_ORIGINAL = 2;
    public const ushort CTA_PROTOINFO_TCP_WSCALE_REPLY = 3;
    public const ushort CTA_PROTOINFO_TCP_FLAGS_ORIGINAL = 4;
    public const ushort CTA_PROTOINFO_TCP_FLAGS_REPLY = 5;
    public const ushort CTA_COUNTERS_PACKETS = 1;
    public const ushort CTA_COUNTERS_BYTES = 2;

    // nf_conntrack_common.h: enum ip_conntrack_status
    public const uint IPS_SEEN_REPLY = 1 << 1;
    public const uint IPS_ASSURED = 1 << 2;
    public const uint IPS_CONFIRMED = 1 << 3;
    public const uint IPS_FIXED_TIMEOUT = 1 << 10;

    // nf_conntrack_tcp.h: enum tcp_conntrack, and IP_CT_TCP_FLAG_*
    public const byte TCP_CONNTRACK_ESTABLISHED = 3;
    public const byte TCP_CONNTRACK_FIN_WAIT = 4;
    public const byte TCP_CONNTRACK_CLOSE_WAIT = 5;
    public const byte TCP_CONNTRACK_LAST_ACK = 6;
    public const byte TCP_CONNTRACK_TIME_WAIT = 7;
    public const byte TCP_CONNTRACK_CLOSE = 8;
    public const byte IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01;
    public const byte IP_CT_TCP_FLAG_SACK_PERM = 0x02;
    public const byte IP_CT_TCP_FLAG_BE_LIBERAL = 0x08;

    public const byte IPPROTO_TCP = 6;

    /// <summary>Large enough for any request built here.</summary>
    public const int MaxRequestLength = 512;

    public static ushort MessageType(ushort ctMessage) => (ushort)((NFNL_SUBSYS_CTNETLINK << 8) | ctMessage);

    /// <summary>
    /// IPCTNL_MSG_CT_NEW creating (never replacing) an established TCP entry with both NATs, a mark,
    /// a timeout and liberal window tracking on both sides: the entry takes over a flow whose
    /// window the kernel never saw. The window scales (and SACK) the peers agreed on go with it, so
    /// that the windows the kernel learns from the first segments are right, and tracking can turn
    /// strict later (<see cref="WriteTighten"/>).
    /// </summary>
    public static int WriteCreate(Span<byte> b, uint seq, in OffloadedFlow flow, uint mark, uint timeoutSeconds)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_NEW), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, Libc.AF_INET);
        WriteTuple(ref w, CTA_TUPLE_ORIG, flow.Original);
        // The reply as it would be without NAT: the kernel derives the real one from the NAT
        // ranges, and only a derived difference sets the SRC_NAT/DST_NAT bits that make it rewrite.
        var o = flow.Original;
        WriteTuple(ref w, CTA_TUPLE_REPLY, new FlowTuple(o.Destination, o.DestinationPort, o.Source, o.SourcePort));
        // A's segments leave for B (the reply's source) from the router port B dialled.
        WriteNat(ref w, CTA_NAT_DST, flow.Reply.Source, flow.Reply.SourcePort);
        WriteNat(ref w, CTA_NAT_SRC, flow.Reply.Destination, flow.Reply.DestinationPort);
        // The kernel marks a created entry CONFIRMED before reading CTA_STATUS, and answers EBUSY
        // to a status that would clear it. FIXED_TIMEOUT: see WriteRefresh.
        w.PutBe32(CTA_STATUS, OurStatus);
        w.PutBe32(CTA_TIMEOUT, timeoutSeconds);
        w.PutBe32(CTA_MARK, mark);
        var info = w.Begin(CTA_PROTOINFO);
        var tcp = w.Begin(CTA_PROTOINFO_TCP);
        w.PutU8(CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
        // struct nf_ct_tcp_flags { __u8 flags; __u8 mask; }: the kernel sets the masked bits to flags.
        // The scales are taken only when both directions have IP_CT_TCP_FLAG_WINDOW_SCALE (nlattr_to_tcp).
        var scaled = flow.ScaleOriginal >= 0 && flow.ScaleReply >= 0;
        var bits = (byte)(IP_CT_TCP_FLAG_BE_LIBERAL | (scaled ? IP_CT_TCP_FLAG_WINDOW_SCALE : 0) | (flow.SackPermitted ? IP_CT_TCP_FLAG_SACK_PERM : 0));
        ReadOnlySpan<byte> flags = [bits, IP_CT_TCP_FLAG_BE_LIBERAL | IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM];
        w.Put(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, flags);
        w.Put(CTA_PROTOINFO_TCP_FLAGS_REPLY, flags);
        if (scaled)
        {
            w.PutU8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, (byte)flow.ScaleOriginal);
            w.PutU8(CTA_PROTOINFO_TCP_WSCALE_REPLY, (byte)flow.ScaleReply);
        }
        w.End(tcp);
        w.End(info);
        return w.Finish();
    }

    /// <summary>
    /// IPCTNL_MSG_CT_NEW updating (never creating) the entry whose original direction is
    /// <paramref name="original"/>: liberal window tracking off in both directions, nothing else.
    /// </summary>
    /// <remarks>
    /// With IP_CT_TCP_FLAG_BE_LIBERAL, tcp_in_window (nf_conntrack_proto_tcp.c) accepts every
    /// segment that fails its window checks, so any FIN is taken, and a reset anywhere after the
    /// highest acknowledgment seen keeps the entry ESTABLISHED but cuts its timeout to the CLOSE
    /// timeout (10 s): one blind reset ended any offloaded session that then stayed silent for 10 s,
    /// and a blind FIN followed by any reset ended it at once. Strict, such segments are INVALID:
    /// they miss the entry's NAT, reach the translator's queue, and it judges them like any other.
    /// </remarks>
    public static int WriteTighten(Span<byte> b, uint seq, in FlowTuple original)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_NEW), NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_INET);
        WriteTuple(ref w, CTA_TUPLE_ORIG, original);
        var info = w.Begin(CTA_PROTOINFO);
        var tcp = w.Begin(CTA_PROTOINFO_TCP);
        ReadOnlySpan<byte> strict = [0, IP_CT_TCP_FLAG_BE_LIBERAL];
        w.Put(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, strict);
        w.Put(CTA_PROTOINFO_TCP_FLAGS_REPLY, strict);
        w.End(tcp);
        w.End(info);
        return w.Finish();
    }

    /// <summary>The status bits of every entry we make, and the ones a refresh sets.</summary>
    public const uint OurStatus = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED | IPS_FIXED_TIMEOUT;

    /// <summary>
    /// IPCTNL_MSG_CT_NEW updating (never creating) the entry whose original direction is
    /// <paramref name="original"/>: its timeout re-armed to <paramref name="timeoutSeconds"/>, and fixed.
    /// </summary>
    /// <remarks>
    /// With IPS_FIXED_TIMEOUT the kernel never changes the entry's timeout on a packet
    /// (__nf_ct_refresh_acct, nf_tcp_handle_invalid): a reset inside the window, which tcp_packet
    /// does not take as exact and answers by cutting the timeout to the CLOSE timeout (10 s), no
    /// longer ends a session that then stays silent, nor does a FIN shorten it. The translator
    /// ends entries itself (idle, time-wait, exact reset) and re-arms the timeout of those that
    /// carry traffic. The status goes whole: ctnetlink clears the changeable bits it does not name.
    /// </remarks>
    public static int WriteRefresh(Span<byte> b, uint seq, in FlowTuple original, uint timeoutSeconds)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_NEW), NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_INET);
        WriteTuple(ref w, CTA_TUPLE_ORIG, original);
        w.PutBe32(CTA_STATUS, OurStatus);
        w.PutBe32(CTA_TIMEOUT, timeoutSeconds);
        return w.Finish();
    }

    /// <summary>IPCTNL_MSG_CT_DELETE of the entry whose original direction is <paramref name="original"/>.</summary>
    public static int WriteDelete(Span<byte> b, uint seq, in FlowTuple original)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_DELETE), NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_INET);
        WriteTuple(ref w, CTA_TUPLE_ORIG, original);
        return w.Finish();
    }

    /// <summary>IPCTNL_MSG_CT_GET of the one entry whose original direction is <paramref name="original"/>.</summary>
    public static int WriteGet(Span<byte> b, uint seq, in FlowTuple original)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_GET), NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_INET);
        WriteTuple(ref w, CTA_TUPLE_ORIG, original);
        return w.Finish();
    }

    /// <summary>A dump (IPCTNL_MSG_CT_GET) of the IPv4 entries whose mark is <paramref name="mark"/>.</summary>
    public static int WriteDumpByMark(Span<byte> b, uint seq, uint mark)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_GET), NLM_F_REQUEST | NLM_F_DUMP, seq, Libc.AF_INET);
        w.PutBe32(CTA_MARK, mark);
        w.PutBe32(CTA_MARK_MASK, uint.MaxValue);
        return w.Finish();
    }

    /// <summary>IPCTNL_MSG_CT_DELETE without a tuple: flushes the IPv4 entries whose mark is <paramref name="mark"/>.</summary>
    public static int WriteFlushByMark(Span<byte> b, uint seq, uint mark)
    {
        var w = new NetlinkWriter(b, MessageType(IPCTNL_MSG_CT_DELETE), NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_INET);
        w.PutBe32(CTA_MARK, mark);
        w.PutBe32(CTA_MARK_MASK, uint.MaxValue);
        return w.Finish();
    }

    private static void WriteTuple(ref NetlinkWriter w, ushort type, in FlowTuple t)
    {
        var tuple = w.Begin(type);
        var ip = w.Begin(CTA_TUPLE_IP);
        w.PutBe32(CTA_IP_V4_SRC, t.Source);
        w.PutBe32(CTA_IP_V4_DST, t.Destination);
        w.End(ip);
        var proto = w.Begin(CTA_TUPLE_PROTO);
        w.PutU8(CTA_PROTO_NUM, IPPROTO_TCP);
        w.PutBe16(CTA_PROTO_SRC_PORT, t.SourcePort);
        w.PutBe16(CTA_PROTO_DST_PORT, t.DestinationPort);
        w.End(proto);
        w.End(tuple);
    }

    private static void WriteNat(ref NetlinkWriter w, ushort type, uint address, ushort port)
    {
        var nat = w.Begin(type);
        w.PutBe32(CTA_NAT_V4_MINIP, address);
        w.PutBe32(CTA_NAT_V4_MAXIP, address);
        var proto = w.Begin(CTA_NAT_PROTO);
        w.PutBe16(CTA_PROTONAT_PORT_MIN, port);
        w.PutBe16(CTA_PROTONAT_PORT_MAX, port);
        w.End(proto);
        w.End(nat);
    }

    /// <summary>
    /// Whether an IPCTNL_MSG_CT_NEW event announces a new entry (the kernel flags those
    /// NLM_F_CREATE | NLM_F_EXCL) rather than a change to one.
    /// </summary>
    public static bool IsCreation(ReadOnlySpan<byte> message) =>
        message.Length >= NLMSG_HDRLEN && (MemoryMarshal.Read<ushort>(message.Slice(6)) & NLM_F_CREATE) != 0;

    /// <summary>
    /// Reads an entry from a ctnetlink message (a dump part, or an event: IPCTNL_MSG_CT_NEW for new
    /// and updated entries, IPCTNL_MSG_CT_DELETE for destroyed ones). False for other messages
    /// and for entries without both IPv4 tuples.
    /// </summary>
    public static bool TryReadEntry(ReadOnlySpan<byte> message, out ushort ctMessage, out ConntrackEntry entry)
    {
        entry = default;
        ctMessage = 0;
        if (message.Length < NLMSG_HDRLEN + NFGENMSG_LEN)
            return false;
        var type = MemoryMarshal.Read<ushort>(message.Slice(4));
        if (type >> 8 != NFNL_SUBSYS_CTNETLINK || message[NLMSG_HDRLEN] != Libc.AF_INET)
            return false;
        ctMessage = (ushort)(type & 0xFF);
        bool orig = false, reply = false;
        var r = new NetlinkAttributeReader(message.Slice(NLMSG_HDRLEN + NFGENMSG_LEN));
        while (r.TryNext(out var t, out var v))
        {
            switch (t)
            {
                case CTA_TUPLE_ORIG:
                    orig = TryReadTuple(v, out entry.Original, out entry.Protocol);
                    break;
                case CTA_TUPLE_REPLY:
                    reply = TryReadTuple(v, out entry.Reply, out _);
                    break;
                case CTA_MARK when v.Length >= 4:
                    entry.Mark = BinaryPrimitives.ReadUInt32BigEndian(v);
                    break;
                case CTA_PROTOINFO:
                    entry.TcpState = ReadTcpState(v);
                    break;
                case CTA_COUNTERS_ORIG:
                    entry.HasCounters |= ReadCounters(v, out entry.OriginalPackets, out entry.OriginalBytes);
                    break;
                case CTA_COUNTERS_REPLY:
                    entry.HasCounters |= ReadCounters(v, out entry.ReplyPackets, out entry.ReplyBytes);
                    break;
            }
        }
        return orig && reply;
    }

    private static bool TryReadTuple(ReadOnlySpan<byte> value, out FlowTuple tuple, out byte protocol)
    {
        tuple = default;
        protocol = 0;
        uint src = 0, dst = 0;
        ushort sport = 0, dport = 0;
        bool haveIp = false, haveProto = false;
        var r = new NetlinkAttributeReader(value);
        while (r.TryNext(out var t, out var v))
        {
            var inner = new NetlinkAttributeReader(v);
            if (t == CTA_TUPLE_IP)
            {
                while (inner.TryNext(out var it, out var iv))
                {
                    if (iv.Length < 4)
                        continue;
                    if (it == CTA_IP_V4_SRC)
                        src = BinaryPrimitives.ReadUInt32BigEndian(iv);
                    else if (it == CTA_IP_V4_DST)
                        (dst, haveIp) = (BinaryPrimitives.ReadUInt32BigEndian(iv), true);
                }
            }
            else if (t == CTA_TUPLE_PROTO)
            {
                while (inner.TryNext(out var it, out var iv))
                {
                    if (it == CTA_PROTO_NUM && iv.Length >= 1)
                        (protocol, haveProto) = (iv[0], true);
                    else if (it == CTA_PROTO_SRC_PORT && iv.Length >= 2)
                        sport = BinaryPrimitives.ReadUInt16BigEndian(iv);
                    else if (it == CTA_PROTO_DST_PORT && iv.Length >= 2)
                        dport = BinaryPrimitives.ReadUInt16BigEndian(iv);
                }
            }
        }
        tuple = new FlowTuple(src, sport, dst, dport);
        return haveIp && haveProto;
    }

    private static byte ReadTcpState(ReadOnlySpan<byte> protoinfo)
    {
        var r = new NetlinkAttributeReader(protoinfo);
        while (r.TryNext(out var t, out var v))
        {
            if (t != CTA_PROTOINFO_TCP)
                continue;
            var tcp = new NetlinkAttributeReader(v);
            while (tcp.TryNext(out var tt, out var tv))
            {
                if (tt == CTA_PROTOINFO_TCP_STATE && tv.Length >= 1)
                    return tv[0];
            }
        }
        return 0;
    }

    private static bool ReadCounters(ReadOnlySpan<byte> value, out ulong packets, out ulong bytes)
    {
        packets = bytes = 0;
        var any = false;
        var r = new NetlinkAttributeReader(value);
        while (r.TryNext(out var t, out var v))
        {
            // The kernel sends u64 counters; very old ones sent u32.
            var n = v.Length >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(v) : v.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(v) : 0;
            if (t == CTA_COUNTERS_PACKETS)
                (packets, any) = (n, true);
            else if (t == CTA_COUNTERS_BYTES)
                (bytes, any) = (n, true);
        }
        return any;
    }
}
