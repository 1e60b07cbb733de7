using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// Encoding and decoding of nfnetlink_queue messages, kept free of sockets so it is unit-tested.
/// Names and values from linux/netlink.h, linux/netfilter/nfnetlink.h,
/// linux/netfilter/nfnetlink_queue.h and linux/netfilter.h.
/// </summary>
/// <remarks>
/// Netlink message (host byte order header, attributes aligned to 4):
/// <code>
///  0               4       6       8               12              16
/// +---------------+-------+-------+---------------+---------------+
/// |   nlmsg_len   | type  | flags |   nlmsg_seq   |   nlmsg_pid   |  struct nlmsghdr
/// +-------+-------+-------+-------+---------------+---------------+
/// |family |version|res_id (BE 16) |  struct nfgenmsg (queue number in res_id)
/// +-------+-------+---------------+
/// | nla_len (16)  | nla_type (16) | value ... padded to 4         |  struct nlattr, repeated
/// </code>
/// </remarks>
internal static class NfQueueMessages
{
    // linux/netlink.h
    public const ushort NLMSG_NOOP = 1;
    public const ushort NLMSG_ERROR = 2;
    public const ushort NLMSG_DONE = 3;
    public const ushort NLM_F_REQUEST = 0x01;
    public const ushort NLM_F_ACK = 0x04;
    public const int NLMSG_HDRLEN = 16;
    public const int NLA_HDRLEN = 4;
    public const ushort NLA_TYPE_MASK = 0x3fff; // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
    public const int NETLINK_NETFILTER = 12;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_NO_ENOBUFS = 5;

    // linux/netfilter/nfnetlink.h
    public const byte NFNETLINK_V0 = 0;
    public const int NFNL_SUBSYS_QUEUE = 3;
    public const int NFGENMSG_LEN = 4;

    // linux/netfilter/nfnetlink_queue.h: message types
    public const ushort NFQNL_MSG_PACKET = 0;
    public const ushort NFQNL_MSG_VERDICT = 1;
    public const ushort NFQNL_MSG_CONFIG = 2;
    public const ushort NFQNL_MSG_VERDICT_BATCH = 3;

    // enum nfqnl_attr_type
    public const ushort NFQA_PACKET_HDR = 1;
    public const ushort NFQA_VERDICT_HDR = 2;
    public const ushort NFQA_IFINDEX_INDEV = 5; // __be32: the device the packet came in on
    public const ushort NFQA_PAYLOAD = 10;
    public const ushort NFQA_CAP_LEN = 13;      // __be32: the packet's length when the payload was cut short
    public const ushort NFQA_SKB_INFO = 14;     // __be32: NFQA_SKB_* flags

    // flags of NFQA_SKB_INFO
    public const uint NFQA_SKB_CSUMNOTREADY = 1 << 0;     // CHECKSUM_PARTIAL: the field holds the pseudo-header sum
    public const uint NFQA_SKB_GSO = 1 << 1;              // a GSO super-packet, longer than the device MTU
    public const uint NFQA_SKB_CSUM_NOTVERIFIED = 1 << 2;

    // enum nfqnl_attr_config
    public const ushort NFQA_CFG_CMD = 1;
    public const ushort NFQA_CFG_PARAMS = 2;
    public const ushort NFQA_CFG_QUEUE_MAXLEN = 3;
    public const ushort NFQA_CFG_MASK = 4;      // __be32: which flags NFQA_CFG_FLAGS changes
    public const ushort NFQA_CFG_FLAGS = 5;     // __be32

    // flags for NFQA_CFG_FLAGS
    public const uint NFQA_CFG_F_FAIL_OPEN = 1 << 0;
    public const uint NFQA_CFG_F_CONNTRACK = 1 << 1;
    public const uint NFQA_CFG_F_GSO = 1 << 2;            // queue GSO packets whole, partial checksums unfinished

    // enum nfqnl_msg_config_cmds
    public const byte NFQNL_CFG_CMD_BIND = 1;
    public const byte NFQNL_CFG_CMD_UNBIND = 2;

    // enum nfqnl_config_mode
    public const byte NFQNL_COPY_PACKET = 2;

    // linux/netfilter.h
    public const uint NF_DROP = 0;
    public const uint NF_ACCEPT = 1;

    public static ushort MessageType(ushort nfqMessage) => (ushort)((NFNL_SUBSYS_QUEUE << 8) | nfqMessage);

    private static int Align(int n) => (n + 3) & ~3;

    /// <summary>Writes nlmsghdr + nfgenmsg; returns the offset where attributes start.</summary>
    private static int WriteHeader(Span<byte> b, ushort nfqMessage, ushort flags, uint seq, byte family, ushort queue)
    {
        var type = MessageType(nfqMessage);
        MemoryMarshal.Write(b.Slice(4), in type);
        MemoryMarshal.Write(b.Slice(6), in flags);
        MemoryMarshal.Write(b.Slice(8), in seq);
        uint pid = 0;
        MemoryMarshal.Write(b.Slice(12), in pid);
        b[16] = family;
        b[17] = NFNETLINK_V0;
        BinaryPrimitives.WriteUInt16BigEndian(b.Slice(18), queue);
        return NLMSG_HDRLEN + NFGENMSG_LEN;
    }

    private static int WriteAttribute(Span<byte> b, int offset, ushort type, ReadOnlySpan<byte> value)
    {
        var len = (ushort)(NLA_HDRLEN + value.Length);
        MemoryMarshal.Write(b.Slice(offset), in len);
        MemoryMarshal.Write(b.Slice(offset + 2), in type);
        value.CopyTo(b.Slice(offset + NLA_HDRLEN));
        var end = offset + Align(len);
        b.Slice(offset + len, end - offset - len).Clear();
        return end;
    }

    private static int Finish(Span<byte> b, int length)
    {
        var len = (uint)length;
        MemoryMarshal.Write(b, in len);
        return length;
    }

    /// <summary>NFQNL_MSG_CONFIG with NFQA_CFG_CMD: bind or unbind this socket to a queue.</summary>
    public static int WriteConfigCommand(Span<byte> b, uint seq, ushort queue, byte command)
    {
        // struct nfqnl_msg_config_cmd { __u8 command; __u8 _pad; __be16 pf; }
        Span<byte> cmd = stackalloc byte[4];
        cmd[0] = command;
        cmd[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(cmd.Slice(2), Libc.AF_INET);
        var o = WriteHeader(b, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_UNSPEC, queue);
        o = WriteAttribute(b, o, NFQA_CFG_CMD, cmd);
        return Finish(b, o);
    }

    /// <summary>NFQNL_MSG_CONFIG with copy mode PACKET, copy range and queue length.</summary>
    public static int WriteConfigParams(Span<byte> b, uint seq, ushort queue, uint copyRange, uint maxQueueLength)
    {
        // struct nfqnl_msg_config_params { __be32 copy_range; __u8 copy_mode; } __attribute__ ((packed));
        Span<byte> p = stackalloc byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(p, copyRange);
        p[4] = NFQNL_COPY_PACKET;
        Span<byte> maxlen = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(maxlen, maxQueueLength);
        var o = WriteHeader(b, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_UNSPEC, queue);
        o = WriteAttribute(b, o, NFQA_CFG_PARAMS, p);
        o = WriteAttribute(b, o, NFQA_CFG_QUEUE_MAXLEN, maxlen);
        return Finish(b, o);
    }

    /// <summary>
    /// NFQNL_MSG_CONFIG with NFQA_CFG_MASK and NFQA_CFG_FLAGS: sets the flags in <paramref name="mask"/>
    /// to their values in <paramref name="flags"/>. The kernel refuses flags it does not know (EOPNOTSUPP).
    /// </summary>
    public static int WriteConfigFlags(Span<byte> b, uint seq, ushort queue, uint flags, uint mask)
    {
        Span<byte> m = stackalloc byte[4];
        Span<byte> f = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(m, mask);
        BinaryPrimitives.WriteUInt32BigEndian(f, flags);
        var o = WriteHeader(b, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, Libc.AF_UNSPEC, queue);
        o = WriteAttribute(b, o, NFQA_CFG_MASK, m);
        o = WriteAttribute(b, o, NFQA_CFG_FLAGS, f);
        return Finish(b, o);
    }

    /// <summary>
    /// A verdict for one packet, or with <paramref name="batch"/> for every queued packet whose id is
    /// at most <paramref name="packetId"/> (NFQNL_MSG_VERDICT_BATCH).
    /// </summary>
    public static int WriteVerdict(Span<byte> b, uint seq, ushort queue, uint packetId, uint verdict, bool batch)
    {
        // struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
        Span<byte> v = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(v, verdict);
        BinaryPrimitives.WriteUInt32BigEndian(v.Slice(4), packetId);
        var o = WriteHeader(b, batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT, NLM_F_REQUEST, seq, Libc.AF_UNSPEC, queue);
        o = WriteAttribute(b, o, NFQA_VERDICT_HDR, v);
        return Finish(b, o);
    }

    /// <summary>Splits the first netlink message off a receive buffer.</summary>
    public static bool TryReadMessage(ReadOnlySpan<byte> buffer, out ushort type, out ReadOnlySpan<byte> message, out int consumed)
    {
        type = 0;
        message = default;
        consumed = 0;
        if (buffer.Length < NLMSG_HDRLEN)
            return false;
        var len = MemoryMarshal.Read<uint>(buffer);
        if (len < NLMSG_HDRLEN || len > (uint)buffer.Length)
            return false;
        type = MemoryMarshal.Read<ushort>(buffer.Slice(4));
        message = buffer.Slice(0, (int)len);
        consumed = Math.Min(buffer.Length, Align((int)len));
        return true;
    }

    /// <summary>Reads the errno of an NLMSG_ERROR message (0 is an acknowledgement).</summary>
    public static bool TryReadError(ReadOnlySpan<byte> message, out int errno)
    {
        errno = 0;
        if (message.Length < NLMSG_HDRLEN + 4)
            return false;
        errno = -MemoryMarshal.Read<int>(message.Slice(NLMSG_HDRLEN));
        return true;
    }

    /// <summary>
    /// Reads a queued packet (NFQNL_MSG_PACKET): its id and where in the message NFQA_PAYLOAD,
    /// the IP datagram, lies (an offset, so the caller can rewrite it in its own buffer).
    /// False when either attribute is missing or any length is inconsistent.
    /// </summary>
    public static bool TryReadPacket(ReadOnlySpan<byte> message, out uint packetId, out ushort queue, out int payloadOffset, out int payloadLength)
    {
        var ok = TryReadPacket(message, out QueuedPacket p);
        packetId = p.Id;
        queue = p.Queue;
        payloadOffset = p.PayloadOffset;
        payloadLength = p.PayloadLength;
        return ok;
    }

    /// <summary>
    /// Reads a queued packet with what the kernel says about it: NFQA_SKB_INFO (partial checksum,
    /// GSO) and NFQA_CAP_LEN (present only when the payload was cut short).
    /// </summary>
    public static bool TryReadPacket(ReadOnlySpan<byte> message, out QueuedPacket packet)
    {
        packet = default;
        if (message.Length < NLMSG_HDRLEN + NFGENMSG_LEN)
            return false;
        if (MemoryMarshal.Read<ushort>(message.Slice(4)) != MessageType(NFQNL_MSG_PACKET))
            return false;
        var p = new QueuedPacket { Queue = BinaryPrimitives.ReadUInt16BigEndian(message.Slice(NLMSG_HDRLEN + 2)) };
        bool haveId = false, havePayload = false;
        var attrs = message.Slice(NLMSG_HDRLEN + NFGENMSG_LEN);
        while (attrs.Length >= NLA_HDRLEN)
        {
            var len = MemoryMarshal.Read<ushort>(attrs);
            var type = (ushort)(MemoryMarshal.Read<ushort>(attrs.Slice(2)) & NLA_TYPE_MASK);
            if (len < NLA_HDRLEN || len > attrs.Length)
                return false;
            var value = attrs.Slice(NLA_HDRLEN, len - NLA_HDRLEN);
            switch (type)
            {
                case NFQA_PACKET_HDR:
                    // struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; } packed
                    if (value.Length < 4)
                        return false;
                    p.Id = BinaryPrimitives.ReadUInt32BigEndian(value);
                    haveId = true;
                    break;
                case NFQA_PAYLOAD:
                    p.PayloadOffset = message.Length - attrs.Length + NLA_HDRLEN;
                    p.PayloadLength = value.Length;
                    havePayload = true;
                    break;
                case NFQA_SKB_INFO:
                    if (value.Length < 4)
                        return false;
                    p.SkbInfo = BinaryPrimitives.ReadUInt32BigEndian(value);
                    break;
                case NFQA_CAP_LEN:
                    if (value.Length < 4)
                        return false;
                    p.CapturedLength = BinaryPrimitives.ReadUInt32BigEndian(value);
                    break;
                case NFQA_IFINDEX_INDEV:
                    if (value.Length < 4)
                        return false;
                    p.InDevice = BinaryPrimitives.ReadUInt32BigEndian(value);
                    break;
            }
            var next = Align(len);
            if (next >= attrs.Length)
                break;
            attrs = attrs.Slice(next);
        }
        packet = p;
        return haveId && havePayload;
    }
}

/// <summary>One queued packet as <see cref="NfQueueMessages.TryReadPacket(ReadOnlySpan{byte}, out QueuedPacket)"/> found it.</summary>
internal struct QueuedPacket
{
    public uint Id;
    public ushort Queue;
    /// <summary>Where the IPv4 datagram starts in the message, and its length as copied.</summary>
    public int PayloadOffset;
    public int PayloadLength;
    /// <summary>NFQA_SKB_INFO flags (NFQA_SKB_CSUMNOTREADY, NFQA_SKB_GSO, ...), 0 when absent.</summary>
    public uint SkbInfo;
    /// <summary>NFQA_CAP_LEN: the whole packet's length, 0 when absent (the payload is whole).</summary>
    public uint CapturedLength;
    /// <summary>NFQA_IFINDEX_INDEV: the ifindex of the device it came in on, 0 when absent.</summary>
    public uint InDevice;

    public readonly bool ChecksumPartial => (SkbInfo & NfQueueMessages.NFQA_SKB_CSUMNOTREADY) != 0;
    public readonly bool Gso => (SkbInfo & NfQueueMessages.NFQA_SKB_GSO) != 0;
    public readonly bool Truncated => CapturedLength > (uint)PayloadLength;
}
