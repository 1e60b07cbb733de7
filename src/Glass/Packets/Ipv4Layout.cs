namespace Glass.Packets;

/// <summary>
/// IPv4 header offsets (RFC 791 3.1).
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |Type of Service|          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |Flags|      Fragment Offset    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Source Address                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Destination Address                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Options                    |    Padding    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// Flags (high 3 bits of offset 6): reserved, DF (0x4000), MF (0x2000); fragment offset is the low 13 bits.
/// </summary>
internal static class Ipv4Layout
{
    public const int VersionIhl = 0;
    public const int TypeOfService = 1;
    public const int TotalLength = 2;
    public const int Identification = 4;
    public const int FlagsFragment = 6;
    public const int TimeToLive = 8;
    public const int Protocol = 9;
    public const int HeaderChecksum = 10;
    public const int SourceAddress = 12;
    public const int DestinationAddress = 16;
    public const int Options = 20;

    public const int MinHeaderLength = 20;
    public const int MaxHeaderLength = 60;
    public const int Version = 4;

    public const ushort DontFragment = 0x4000;
    public const ushort MoreFragments = 0x2000;
    public const ushort FragmentOffsetMask = 0x1FFF;

    public const byte ProtocolTcp = 6;
    public const byte DefaultTtl = 64;
}
