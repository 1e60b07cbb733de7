namespace Glass.Packets;

/// <summary>Options a crafted SYN-ACK carries.</summary>
public struct SynAckOptions
{
    /// <summary>0 = omit.</summary>
    public ushort Mss;
    /// <summary>Negative = omit; values above 14 are written as 14 (RFC 7323 2.3).</summary>
    public sbyte WindowScale;
    public bool SackPermitted;
    public bool HasTimestamps;
    public uint TsVal, TsEcr;
}
