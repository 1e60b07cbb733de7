using System.Buffers.Binary;
using Glass.Packets;
using Glass.Translator;

namespace Glass.Bench;

/// <summary>xoshiro256** seeded through splitmix64: fast, and the same stream on every runtime and OS.</summary>
internal sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;

    public Rng(ulong seed)
    {
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E37_79B9_7F4A_7C15;
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB;
        return z ^ (z >> 31);
    }

    public ulong Next()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, n) for n &gt; 0 (Lemire's multiply-shift; the bias is irrelevant here).</summary>
    public int Below(int n) => (int)(((Next() >> 32) * (ulong)(uint)n) >> 32);

    /// <summary>True with probability 1/n.</summary>
    public bool OneIn(int n) => Below(n) == 0;

    /// <summary>True with probability percent/100.</summary>
    public bool Percent(int percent) => Below(100) < percent;

    public uint NextUInt() => (uint)(Next() >> 32);

    public ushort NextUShort() => (ushort)(Next() >> 48);

    public void Fill(Span<byte> bytes)
    {
        while (bytes.Length >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, Next());
            bytes = bytes[8..];
        }
        for (int i = 0; i < bytes.Length; i++)
            bytes[i] = (byte)Next();
    }
}

/// <summary>A clock that moves only when told to.</summary>
internal sealed class ManualClock : IClock
{
    public long NowMilliseconds { get; set; } = 1_000_000;

    public void Advance(long milliseconds) => NowMilliseconds += milliseconds;
}

/// <summary>Accepts every packet and does nothing with it: the engine's own cost, not a socket's.</summary>
internal sealed class NullSender : IPacketSender
{
    public static readonly NullSender Instance = new();

    public bool Send(ReadOnlySpan<byte> packet, uint destination) => true;

    public bool Send(ReadOnlySpan<byte> packet, uint destination, SendOffload offload) => true;
}

/// <summary>
/// Writes IPv4+TCP datagrams from scratch with correct checksums: a 20-byte IPv4 header with DF,
/// a TCP header whose option bytes are padded at the front with NOPs to a multiple of four (so an
/// option deliberately left incomplete stays at the very end of the list), then the payload.
/// </summary>
internal static class PacketWriter
{
    public const int IpHeaderLength = 20;
    public const int TcpHeaderLength = 20;
    public const int MaxOptionsLength = 40;
    public const byte Nop = 1;

    public static int Write(Span<byte> destination, uint source, ushort sourcePort, uint target, ushort targetPort,
        uint sequence, uint acknowledgment, TcpFlags flags, ushort window,
        ReadOnlySpan<byte> options = default, ReadOnlySpan<byte> payload = default)
    {
        if (options.Length > MaxOptionsLength)
            throw new ArgumentException($"At most {MaxOptionsLength} option bytes fit a TCP header.", nameof(options));
        int pad = (4 - options.Length % 4) % 4;
        int tcpLength = TcpHeaderLength + pad + options.Length;
        int total = IpHeaderLength + tcpLength + payload.Length;
        if (total > ushort.MaxValue || total > destination.Length)
            throw new ArgumentException($"A {total}-byte datagram does not fit.", nameof(destination));

        Span<byte> p = destination[..total];
        Span<byte> ip = p[..IpHeaderLength];
        ip.Clear();
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)total);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000); // DF, offset 0
        ip[8] = 64;
        ip[9] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], target);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));

        Span<byte> tcp = p[IpHeaderLength..];
        tcp[..TcpHeaderLength].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], targetPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], acknowledgment);
        tcp[12] = (byte)(tcpLength / 4 << 4);
        tcp[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], window);
        tcp.Slice(TcpHeaderLength, pad).Fill(Nop);
        options.CopyTo(tcp[(TcpHeaderLength + pad)..]);
        payload.CopyTo(tcp[tcpLength..]);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum.ComputeTcp(source, target, tcp[..(tcpLength + payload.Length)]));
        return total;
    }

    /// <summary>Recomputes both checksums of whatever parses as IPv4+TCP; false (unchanged) otherwise.</summary>
    public static bool FixChecksums(Span<byte> packet)
    {
        if (!TcpPacket.TryParse(packet, out var tcp))
            return false;
        Span<byte> ip = packet[..tcp.IpHeaderLength];
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
        Span<byte> segment = packet[tcp.TcpOffset..tcp.TotalLength];
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], Checksum.ComputeTcp(tcp.SourceAddress, tcp.DestinationAddress, segment));
        return true;
    }

    /// <summary>
    /// Writes an ICMP "fragmentation needed" error (type 3 code 4, RFC 1191 next-hop MTU) from
    /// <paramref name="source"/> to <paramref name="target"/> quoting <paramref name="quoted"/> (an IPv4
    /// header and the start of its TCP segment), with correct IPv4 and ICMP checksums.
    /// </summary>
    public static int WriteIcmpTooBig(Span<byte> destination, uint source, uint target, ushort mtu, ReadOnlySpan<byte> quoted)
    {
        int total = IpHeaderLength + 8 + quoted.Length;
        if (total > ushort.MaxValue || total > destination.Length)
            throw new ArgumentException($"A {total}-byte datagram does not fit.", nameof(destination));
        Span<byte> p = destination[..total];
        p[..(IpHeaderLength + 8)].Clear();
        p[0] = 0x45;
        p[1] = 0xC0; // internetwork control, as routers send errors
        BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)total);
        p[8] = 64;
        p[9] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(p[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(p[16..], target);
        Span<byte> icmp = p[IpHeaderLength..];
        icmp[0] = 3;
        icmp[1] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], mtu);
        quoted.CopyTo(icmp[8..]);
        FixIcmpChecksums(p);
        return total;
    }

    /// <summary>Recomputes the IPv4 header and ICMP checksums of what looks like an IPv4 ICMP datagram.</summary>
    public static bool FixIcmpChecksums(Span<byte> packet)
    {
        if (packet.Length < IpHeaderLength || packet[0] >> 4 != 4 || packet[9] != 1)
            return false;
        int ihl = (packet[0] & 0x0F) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (ihl < IpHeaderLength || total > packet.Length || total < ihl + 4)
            return false;
        Span<byte> ip = packet[..ihl];
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
        Span<byte> icmp = packet[ihl..total];
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
        return true;
    }

    /// <summary>Parses, and both the IPv4 header checksum and the TCP checksum verify.</summary>
    public static bool IsValid(ReadOnlySpan<byte> packet) =>
        TcpPacket.TryParse(packet, out var tcp)
        && Checksum.VerifyIpv4Header(packet[..tcp.IpHeaderLength])
        && Checksum.VerifyTcp(packet, tcp);

    /// <summary>The option list Linux puts on a SYN: MSS, SACK-permitted + timestamps, NOP + window scale (20 bytes).</summary>
    public static byte[] LinuxSynOptions(ushort mss, uint tsVal, byte windowScale)
    {
        var o = new byte[20];
        o[0] = 2;
        o[1] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(o.AsSpan(2), mss);
        o[4] = 4;
        o[5] = 2;
        o[6] = 8;
        o[7] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(o.AsSpan(8), tsVal);
        // TSecr (12..15) is zero on a SYN.
        o[16] = Nop;
        o[17] = 3;
        o[18] = 3;
        o[19] = windowScale;
        return o;
    }

    /// <summary>Lower-case hex, no separators: pastes straight into a replay.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}
