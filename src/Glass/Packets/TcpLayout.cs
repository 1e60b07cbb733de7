namespace Glass.Packets;

/// <summary>
/// TCP header offsets (RFC 9293 3.1), relative to the start of the TCP header.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Source Port          |       Destination Port        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Sequence Number                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Acknowledgment Number                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Data |       |C|E|U|A|P|R|S|F|                               |
/// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
/// |       |       |R|E|G|K|H|T|N|N|                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Checksum            |         Urgent Pointer        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Options                    |    Padding    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </summary>
internal static class TcpLayout
{
    public const int SourcePort = 0;
    public const int DestinationPort = 2;
    public const int Sequence = 4;
    public const int Acknowledgment = 8;
    public const int DataOffset = 12;
    public const int Flags = 13;
    public const int Window = 14;
    public const int Checksum = 16;
    public const int UrgentPointer = 18;
    public const int Options = 20;

    public const int MinHeaderLength = 20;
    public const int MaxHeaderLength = 60;
    public const int MaxOptionsLength = MaxHeaderLength - MinHeaderLength;
}

/// <summary>TCP option kinds this layer understands (IANA "TCP Option Kind Numbers").</summary>
internal static class TcpOptionKind
{
    public const byte EndOfList = 0;        // RFC 9293
    public const byte Nop = 1;              // RFC 9293
    public const byte Mss = 2;              // RFC 9293, length 4
    public const byte WindowScale = 3;      // RFC 7323, length 3
    public const byte SackPermitted = 4;    // RFC 2018, length 2
    public const byte Sack = 5;             // RFC 2018
    public const byte Timestamps = 8;       // RFC 7323, length 10
    public const byte Mptcp = 30;           // RFC 8684
    public const byte FastOpen = 34;        // RFC 7413
    public const byte Experiment1 = 253;    // RFC 6994 shared experimental kinds
    public const byte Experiment2 = 254;

    public const int MssLength = 4;
    public const int WindowScaleLength = 3;
    public const int SackPermittedLength = 2;
    public const int TimestampsLength = 10;

    /// <summary>ExID of TCP Fast Open under the experimental kinds (RFC 7413 appendix, IANA ExID registry).</summary>
    public const ushort FastOpenExperimentId = 0xF989;

    /// <summary>RFC 7323 2.3: shift counts above 14 are treated as 14.</summary>
    public const int MaxWindowScale = 14;
}
