using System.Buffers.Binary;

namespace Glass.Packets;

/// <summary>
/// RFC 7323 timestamps option:
/// <code>
/// +-------+-------+---------------------+---------------------+
/// |Kind=8 |  10   |   TS Value (TSval)  |TS Echo Reply (TSecr)|
/// +-------+-------+---------------------+---------------------+
///     1       1              4                     4
/// </code>
/// </summary>
public static class TcpTimestamps
{
    private const int TsValOffset = 2;
    private const int TsEcrOffset = 6;

    /// <summary>Finds the timestamp option in a segment's option bytes; false if absent or the list is malformed.</summary>
    public static bool TryFind(ReadOnlySpan<byte> options, out uint tsVal, out uint tsEcr)
    {
        var reader = new TcpOptionReader(options);
        while (reader.Next(out byte kind, out ReadOnlySpan<byte> body) == TcpOptionStep.Option)
        {
            // A wrong-length TS is skipped like any unknown option, matching TcpSynOptions.
            if (kind == TcpOptionKind.Timestamps && TryRead(body, out tsVal, out tsEcr))
                return true;
        }
        tsVal = 0;
        tsEcr = 0;
        return false;
    }

    /// <summary>Reads one whole option (kind and length included) if it is a well-formed TS option.</summary>
    internal static bool TryRead(ReadOnlySpan<byte> body, out uint tsVal, out uint tsEcr)
    {
        if (body.Length != TcpOptionKind.TimestampsLength || body[0] != TcpOptionKind.Timestamps)
        {
            tsVal = 0;
            tsEcr = 0;
            return false;
        }
        tsVal = BinaryPrimitives.ReadUInt32BigEndian(body[TsValOffset..]);
        tsEcr = BinaryPrimitives.ReadUInt32BigEndian(body[TsEcrOffset..]);
        return true;
    }
}
