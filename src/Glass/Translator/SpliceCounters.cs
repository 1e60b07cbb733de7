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
    /// <summary>
    /// A SYN held until it may be answered (later, not an error): the other side's SYN is not in yet,
    /// or, for side B, side A has not proven its own yet.
    /// </summary>
    WaitingForPeer,
    /// <summary>
    /// A segment the handshake does not let cross (yet): before any SYN-ACK went out, from a side
    /// that has not proved its SYN, or toward a side that holds several SYNs none of which proved itself.
    /// </summary>
    HandshakeIncomplete,
    /// <summary>A SYN with a new ISN or source port for a side whose handshake was already answered.</summary>
    EndpointBusy,
    /// <summary>A reset outside the receiver's window (RFC 5961 3.2): never relayed, changes nothing.</summary>
    RstOutOfWindow,
    /// <summary>
    /// Both sides proved their SYNs, but each had been answered for a different SYN of the other (a
    /// spoofed SYN crossed them): the translator reset both, so their applications retry.
    /// </summary>
    HandshakeConflict,
    /// <summary>A "fragmentation needed" error about a relayed flow that is malformed, forged or out of window.</summary>
    IcmpUnhandled,
    SendFailed,
    /// <summary>Longer than NFQUEUE copies (65531 bytes): the queue cut its tail off.</summary>
    Truncated,
    /// <summary>
    /// Not a drop: the packet is none of the splice's business (an ICMP error about the router's
    /// own connections), and the host hands it back to the kernel with an accept verdict.
    /// </summary>
    LeftToKernel,
}

/// <summary>
/// Why a relayed segment was not believed: it crossed (the receiving peer judges it, and answers a
/// blind forgery with a challenge ACK, RFC 5961), but it changed none of the translator's state.
/// </summary>
public enum IgnoredReason
{
    /// <summary>Its sequence numbers lie outside what the receiver offered (RFC 9293 3.10.7.4).</summary>
    OutOfWindow,
    /// <summary>It acknowledges data the other side never sent (above SND.NXT, RFC 5961 5.2).</summary>
    AckUnsent,
    /// <summary>It acknowledges data older than the largest window back (below SND.UNA - MAX.SND.WND, RFC 5961 5.2).</summary>
    AckTooOld,
    /// <summary>A reset in the window but not at the expected sequence number (RFC 5961 3.2): the session stays.</summary>
    ResetNotExact,
    /// <summary>A FIN outside the receiver's window.</summary>
    FinOutOfWindow,
    /// <summary>A peer sent data after a FIN that had counted for it: that FIN was not its own, and is forgotten.</summary>
    FinRevoked,
    /// <summary>
    /// The kernel took a reset of a half-closed offloaded session without judging its sequence
    /// number: the session is kept until it has been silent for the transitory timeout.
    /// </summary>
    HalfClosedReset,
    /// <summary>
    /// The kernel took a reset of an established offloaded session whose entry had seen nothing
    /// from one side, so it could not judge the reset's number: the peers were asked instead
    /// (SpliceEngine.ResetCheck.cs), and the session ended only if one confirmed it.
    /// </summary>
    ResetUnjudged,
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
    /// <summary>Segments relayed but not believed, by <see cref="IgnoredReason"/>.</summary>
    public IReadOnlyDictionary<string, long> Ignored { get; init; } = new Dictionary<string, long>();
    /// <summary>ICMP errors the splice had no session for, handed back to the kernel (accept verdict).</summary>
    public long IcmpLeftToKernel { get; init; }
    /// <summary>Relayed packets whose IPv4 options were removed (they could carry one side's hop addresses to the other).</summary>
    public long IpOptionsStripped { get; init; }
    /// <summary>Times a side of a link got a second SYN before either proved itself (a retry, or someone spoofing the peer).</summary>
    public long SynsContested { get; init; }
    /// <summary>
    /// SYNs whose SYN-ACK the host at their source address answered with a reset, so they were not
    /// its own (spoofed) or its connect was abandoned: forgotten, the link waiting for the side's own.
    /// </summary>
    public long SynsDisowned { get; init; }
    /// <summary>
    /// SYN-ACKs sent again to side A (the connector) because B retransmitted its SYN, which waits for
    /// A's acknowledgment: A's was lost, and A had nothing to send that would prove it.
    /// </summary>
    public long ProofRetries { get; init; }
    /// <summary>SYNs to a (peer, router port) pair whose link ended unpaired (cancelled or out of time), answered with a reset.</summary>
    public long SynsRefused { get; init; }
    /// <summary>Sessions whose flow a new SYN reopened (the peer's old connection on that 4-tuple was gone).</summary>
    public long SessionsReopened { get; init; }
    /// <summary>Sessions a conntrack entry carries now.</summary>
    public int SessionsOffloaded { get; init; }
    public long OffloadedTotal { get; init; }
    /// <summary>Sessions the kernel refused to take (they stay in userspace); see the translator's last offload error.</summary>
    public long OffloadFailures { get; init; }
    /// <summary>The errno of the last refused offload, 0 when none was refused.</summary>
    public int LastOffloadErrno { get; init; }
    /// <summary>Sessions with a peer on the router's own host: relayed by the translator, never offloaded.</summary>
    public long SessionsKeptLocal { get; init; }
    /// <summary>Sessions taken over from an earlier translator's entries.</summary>
    public long SessionsAdopted { get; init; }
    /// <summary>Offloaded sessions whose entry turned to strict window tracking once it had seen both directions.</summary>
    public long OffloadsTightened { get; init; }
    /// <summary>Entries that refused strict tracking (they stay liberal); see the translator's last tighten error.</summary>
    public long TightenFailures { get; init; }
    /// <summary>Times an entry's fixed timeout could not be re-armed (retried at the next interval); see the translator's last refresh error.</summary>
    public long RefreshFailures { get; init; }
    /// <summary>Conntrack events about an entry that an offloaded session's own entry replaced (the same flows, made again): ignored.</summary>
    public long StaleKernelEvents { get; init; }
}
