namespace Glass.Translator;

/// <summary>
/// What the kernel told us about a queued packet (NFQA_SKB_INFO, NFQA_CAP_LEN) that decides how
/// it may be relayed. The default is an ordinary packet: complete, one segment, full checksum.
/// </summary>
public readonly record struct QueuedPacketInfo
{
    /// <summary>
    /// CHECKSUM_PARTIAL: the TCP checksum field holds only the folded pseudo-header sum; the kernel
    /// finishes it on the way out. Only packets built on this machine (another namespace, a VM) are
    /// queued so, and the kernel trusts them as verified.
    /// </summary>
    public bool ChecksumPartial { get; init; }

    /// <summary>A GSO super-packet: one IPv4 and TCP header over many segments' worth of payload.</summary>
    public bool Gso { get; init; }

    /// <summary>Longer than the queue can copy (65531 bytes): its tail is missing.</summary>
    public bool Truncated { get; init; }

    /// <summary>
    /// Came in on the loopback device (NFQA_IFINDEX_INDEV): a process on the router's own host sent
    /// it, to 127.0.0.1 or to one of the router's addresses. Nothing from outside arrives there.
    /// </summary>
    public bool Local { get; init; }
}

/// <summary>What the kernel still has to do to a packet the engine sends.</summary>
/// <param name="ChecksumPartial">Finish the TCP checksum, whose field holds the pseudo-header sum.</param>
/// <param name="SegmentSize">Cut the packet into segments of this much TCP payload; 0 to send it as it is.</param>
public readonly record struct SendOffload(bool ChecksumPartial, ushort SegmentSize)
{
    public bool IsNone => !ChecksumPartial && SegmentSize == 0;
}
