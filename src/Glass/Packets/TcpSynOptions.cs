using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// Options of a SYN, as the splice engine mirrors them. Layouts (kind, length, data):
/// <code>
/// MSS      (RFC 9293): | 2 | 4 |  mss (16)  |
/// WS       (RFC 7323): | 3 | 3 | shift |
/// SACK-OK  (RFC 2018): | 4 | 2 |
/// TS       (RFC 7323): | 8 | 10 |  TSval (32)  |  TSecr (32)  |
/// MPTCP    (RFC 8684): | 30 | len | subtype/version ... |
/// TFO      (RFC 7413): | 34 | len | cookie ... |
/// TFO exp. (RFC 6994): | 254 | len | 0xF9 | 0x89 | cookie ... |
/// </code>
/// </summary>
public struct TcpSynOptions
{
    private const int ExperimentIdOffset = 2;
    private const int ExperimentMinLength = 4;
    private const int MssValueOffset = 2;
    private const int WindowScaleValueOffset = 2;

    /// <summary>0 = absent.</summary>
    public ushort Mss;
    /// <summary>-1 = absent; otherwise 0..14 (larger values clamped, RFC 7323 2.3).</summary>
    public sbyte WindowScale;
    public bool SackPermitted;
    public bool HasTimestamps;
    public uint TsVal, TsEcr;
    /// <summary>Kind 34 of any length, or an experimental kind carrying ExID 0xF989.</summary>
    public bool HasFastOpen;
    /// <summary>Kind 30 of any length.</summary>
    public bool HasMptcp;

    /// <summary>No options present.</summary>
    public static TcpSynOptions Empty => new() { WindowScale = -1 };

    /// <summary>
    /// Parses a SYN's option bytes. Known kinds with a wrong length and unknown kinds are skipped;
    /// a missing, too-small or overrunning length byte is malformed (false). When a kind repeats, the last wins.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> options, out TcpSynOptions result)
    {
        result = Empty;
        var reader = new TcpOptionReader(options);
        while (true)
        {
            switch (reader.Next(out byte kind, out ReadOnlySpan<byte> body))
            {
                case TcpOptionStep.End:
                    return true;
                case TcpOptionStep.Malformed:
                    result = Empty;
                    return false;
            }

            switch (kind)
            {
                case TcpOptionKind.Mss when body.Length == TcpOptionKind.MssLength:
                    result.Mss = BinaryPrimitives.ReadUInt16BigEndian(body[MssValueOffset..]);
                    break;
                case TcpOptionKind.WindowScale when body.Length == TcpOptionKind.WindowScaleLength:
                    result.WindowScale = (sbyte)Math.Min((int)body[WindowScaleValueOffset], TcpOptionKind.MaxWindowScale);
                    break;
                case TcpOptionKind.SackPermitted when body.Length == TcpOptionKind.SackPermittedLength:
                    result.SackPermitted = true;
                    break;
                case TcpOptionKind.Timestamps when TcpTimestamps.TryRead(body, out uint tsVal, out uint tsEcr):
                    result.HasTimestamps = true;
                    result.TsVal = tsVal;
                    result.TsEcr = tsEcr;
                    break;
                case TcpOptionKind.FastOpen:
                    result.HasFastOpen = true;
                    break;
                case TcpOptionKind.Experiment1 or TcpOptionKind.Experiment2
                    when body.Length >= ExperimentMinLength
                         && BinaryPrimitives.ReadUInt16BigEndian(body[ExperimentIdOffset..]) == TcpOptionKind.FastOpenExperimentId:
                    result.HasFastOpen = true;
                    break;
                case TcpOptionKind.Mptcp:
                    result.HasMptcp = true;
                    break;
            }
        }
    }
}
