using System.Buffers.Binary;
using Glass.Packets;

namespace Glass.Tests.Packets;

/// <summary>Builds IPv4+TCP packets field by field, with checksums from <see cref="ReferenceChecksum"/>.</summary>
internal sealed class PacketSpec
{
    public uint Source = 0xC0000201;        // 192.0.2.1
    public uint Destination = 0xCB007101;   // 203.0.113.1
    public ushort SourcePort = 54321;
    public ushort DestinationPort = 443;
    public uint Sequence = 1000;
    public uint Acknowledgment;
    public TcpFlags Flags = TcpFlags.Syn;
    public ushort Window = 64240;
    public ushort Urgent;
    public ushort Identification = 0x1C46;
    public ushort FlagsFragment = 0x4000;
    public byte Protocol = 6;
    public byte Ttl = 64;
    public byte[] IpOptions = [];
    public byte[] TcpOptions = [];
    public byte[] Payload = [];
    public int Padding;
    public bool FillChecksums = true;

    public int IpHeaderLength => 20 + IpOptions.Length;
    public int TcpHeaderLength => 20 + TcpOptions.Length;
    public int TotalLength => IpHeaderLength + TcpHeaderLength + Payload.Length;

    public byte[] Build()
    {
        if (IpOptions.Length % 4 != 0 || TcpOptions.Length % 4 != 0)
            throw new InvalidOperationException("options must be padded to 4 bytes");
        int ihl = IpHeaderLength;
        byte[] p = new byte[TotalLength + Padding];
        p[0] = (byte)(0x40 | (ihl / 4));
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)TotalLength);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), Identification);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), FlagsFragment);
        p[8] = Ttl;
        p[9] = Protocol;
        BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(12), Source);
        BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(16), Destination);
        IpOptions.CopyTo(p, 20);

        var t = p.AsSpan(ihl);
        BinaryPrimitives.WriteUInt16BigEndian(t, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], Sequence);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], Acknowledgment);
        t[12] = (byte)((TcpHeaderLength / 4) << 4);
        t[13] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], Window);
        BinaryPrimitives.WriteUInt16BigEndian(t[18..], Urgent);
        TcpOptions.CopyTo(t[20..]);
        Payload.CopyTo(t[TcpHeaderLength..]);
        for (int i = TotalLength; i < p.Length; i++)
            p[i] = 0xA5; // padding must be ignored, so make it non-zero

        if (FillChecksums)
            ReferenceChecksum.Fill(p);
        return p;
    }
}

/// <summary>
/// A deliberately naive RFC 1071 implementation (one 16-bit word at a time, int arithmetic), independent of
/// the code under test, used as the oracle.
/// </summary>
internal static class ReferenceChecksum
{
    public static ushort Sum(byte[] data, int offset, int length, int initial = 0)
    {
        long sum = initial;
        for (int i = 0; i < length; i += 2)
        {
            int hi = data[offset + i];
            int lo = i + 1 < length ? data[offset + i + 1] : 0;
            sum += (hi << 8) | lo;
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        while (sum > 0xFFFF)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    public static ushort Ip(byte[] packet)
    {
        int ihl = (packet[0] & 0x0F) * 4;
        byte[] copy = packet[..ihl];
        copy[10] = copy[11] = 0;
        return (ushort)~Sum(copy, 0, ihl);
    }

    public static ushort Tcp(byte[] packet)
    {
        int ihl = (packet[0] & 0x0F) * 4;
        int total = (packet[2] << 8) | packet[3];
        byte[] seg = packet[ihl..total];
        seg[16] = seg[17] = 0;
        int pseudo = (packet[12] << 8 | packet[13]) + (packet[14] << 8 | packet[15])
                     + (packet[16] << 8 | packet[17]) + (packet[18] << 8 | packet[19])
                     + 6 + seg.Length;
        return (ushort)~Sum(seg, 0, seg.Length, pseudo);
    }

    public static void Fill(byte[] packet)
    {
        int ihl = (packet[0] & 0x0F) * 4;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Ip(packet));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(ihl + 16), Tcp(packet));
    }

    public static ushort IpField(byte[] packet) => BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(10));

    public static ushort TcpField(byte[] packet) =>
        BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan((packet[0] & 0x0F) * 4 + 16));

    /// <summary>One's complement a + b.</summary>
    public static ushort Add(int a, int b)
    {
        int s = a + b;
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)s;
    }
}

internal static class Hex
{
    public static byte[] Bytes(string hex) => Convert.FromHexString(hex.Replace(" ", "").Replace("\n", "").Replace("\r", ""));
}
