using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static Glass.Interop.NfQueueMessages;

namespace Glass.Interop;

/// <summary>
/// Builds one netfilter netlink request in a caller's buffer: nlmsghdr, nfgenmsg, then attributes
/// (nested ones closed with <see cref="End"/>). Values in the kernel's byte order for each field:
/// the header in host order, nfnetlink attribute payloads big-endian. linux/netlink.h, nfnetlink.h.
/// </summary>
internal ref struct NetlinkWriter
{
    // linux/netlink.h
    public const ushort NLA_F_NESTED = 0x8000;

    private readonly Span<byte> _b;
    private int _o;

    public NetlinkWriter(Span<byte> buffer, ushort type, ushort flags, uint seq, byte family, ushort resId = 0)
    {
        _b = buffer;
        _b.Slice(0, NLMSG_HDRLEN + NFGENMSG_LEN).Clear();
        MemoryMarshal.Write(_b.Slice(4), in type);
        MemoryMarshal.Write(_b.Slice(6), in flags);
        MemoryMarshal.Write(_b.Slice(8), in seq);
        // struct nfgenmsg { __u8 nfgen_family; __u8 version; __be16 res_id; }
        _b[16] = family;
        _b[17] = NFNETLINK_V0;
        BinaryPrimitives.WriteUInt16BigEndian(_b.Slice(18), resId);
        _o = NLMSG_HDRLEN + NFGENMSG_LEN;
    }

    public void Put(ushort type, scoped ReadOnlySpan<byte> value)
    {
        var len = (ushort)(NLA_HDRLEN + value.Length);
        MemoryMarshal.Write(_b.Slice(_o), in len);
        MemoryMarshal.Write(_b.Slice(_o + 2), in type);
        value.CopyTo(_b.Slice(_o + NLA_HDRLEN));
        var end = _o + Align(len);
        _b.Slice(_o + len, end - _o - len).Clear();
        _o = end;
    }

    public void PutU8(ushort type, byte value) => Put(type, [value]);

    public void PutBe16(ushort type, ushort value)
    {
        Span<byte> v = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(v, value);
        Put(type, v);
    }

    public void PutBe32(ushort type, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(v, value);
        Put(type, v);
    }

    /// <summary>Opens a nested attribute; returns where it starts, for <see cref="End"/>.</summary>
    public int Begin(ushort type)
    {
        var start = _o;
        var t = (ushort)(type | NLA_F_NESTED);
        MemoryMarshal.Write(_b.Slice(_o + 2), in t);
        _o += NLA_HDRLEN;
        return start;
    }

    public void End(int start)
    {
        var len = (ushort)(_o - start);
        MemoryMarshal.Write(_b.Slice(start), in len);
    }

    /// <summary>Writes nlmsg_len; returns the message's length.</summary>
    public int Finish()
    {
        var len = (uint)_o;
        MemoryMarshal.Write(_b, in len);
        return _o;
    }

    private static int Align(int n) => (n + 3) & ~3;
}

/// <summary>Walks a run of netlink attributes; stops (returns false) at the end or at a malformed one.</summary>
internal ref struct NetlinkAttributeReader
{
    private ReadOnlySpan<byte> _rest;

    public NetlinkAttributeReader(ReadOnlySpan<byte> attributes) => _rest = attributes;

    public bool TryNext(out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (_rest.Length < NLA_HDRLEN)
            return false;
        var len = MemoryMarshal.Read<ushort>(_rest);
        if (len < NLA_HDRLEN || len > _rest.Length)
        {
            _rest = default;
            return false;
        }
        type = (ushort)(MemoryMarshal.Read<ushort>(_rest.Slice(2)) & NLA_TYPE_MASK);
        value = _rest.Slice(NLA_HDRLEN, len - NLA_HDRLEN);
        var next = (len + 3) & ~3;
        _rest = next >= _rest.Length ? default : _rest.Slice(next);
        return true;
    }
}
