namespace Glass.Translator;

/// <summary>Why a queued packet was not relayed. Every queued packet is dropped in the kernel; these say why we sent nothing for it.</summary>
public enum DropReason
{
    /// <summary>Relayed or answered: not a drop.</summary>
    None = 0,
    Malformed,
    /// <summary>A SYN, FIN or RST whose TCP checksum is wrong: it must not change any state.</summary>
    BadChecksum,
    Fragment,
    /// <summary>No session for this 4-tuple and not a SYN.</summary>
    NoSession,
    /// <summary>A SYN to a (peer address, router port) pair that no link names.</summary>
    NotLinked,
    /// <summary>A SYN held until the other side's SYN arrives (answered later, not an error).</summary>
    WaitingForPeer,
    /// <summary>A segment other than SYN before both SYNs arrived.</summary>
    HandshakeIncomplete,
    /// <summary>A SYN with a new ISN or source port for a side whose handshake was already answered.</summary>
    EndpointBusy,
    RstOutOfWindow,
    /// <summary>ICMP other than "fragmentation needed" quoting TCP, or malformed.</summary>
    IcmpUnhandled,
    SendFailed,
    /// <summary>Longer than NFQUEUE copies (65531 bytes): the queue cut its tail off.</summary>
    Truncated,
}

/// <summary>Translator counters; written under the engine's lock, read as snapshots.</summary>
public sealed record SpliceCounters
{
    public long PacketsRelayed { get; init; }
    public long BytesRelayed { get; init; }
    public long SynAcksSent { get; init; }
    public long IcmpRelayed { get; init; }
    public long SessionsCreated { get; init; }
    public long SessionsReleased { get; init; }
    public int SessionsActive { get; init; }
    public int SessionsPending { get; init; }
    public IReadOnlyDictionary<string, int> SessionsByState { get; init; } = new Dictionary<string, int>();
    public IReadOnlyDictionary<string, long> Drops { get; init; } = new Dictionary<string, long>();
    /// <summary>Sessions a conntrack entry carries now.</summary>
    public int SessionsOffloaded { get; init; }
    public long OffloadedTotal { get; init; }
    /// <summary>Sessions the kernel refused to take (they stay in userspace); see the translator's last offload error.</summary>
    public long OffloadFailures { get; init; }
    /// <summary>The errno of the last refused offload, 0 when none was refused.</summary>
    public int LastOffloadErrno { get; init; }
    /// <summary>Sessions taken over from an earlier translator's entries.</summary>
    public long SessionsAdopted { get; init; }
}
