using Glass.Packets;

namespace Glass.Translator;

public enum SessionState
{
    /// <summary>Linked by the controller; no SYN-ACK sent yet (one or both sides' SYNs missing).</summary>
    Pending,
    /// <summary>SYN-ACKs sent; waiting until each side proves, by acknowledging its SYN-ACK, that the SYN was its own.</summary>
    Handshake,
    Established,
    /// <summary>At least one side sent an in-window FIN.</summary>
    Closing,
    /// <summary>Both FINs acknowledged; the mapping lingers for late retransmissions.</summary>
    TimeWait,
}

/// <summary>
/// One SYN for one side of a link. Anyone can send a SYN from a peer's address, so a side may
/// hold a few of them until one proves itself by acknowledging the SYN-ACK it was sent.
/// </summary>
internal struct SynCandidate
{
    public ushort PeerPort;
    public uint Router;         // the router address this SYN was sent to
    public uint Isn;
    public ushort SynWindow;
    public bool EcnSetup;       // SYN carried ECE and CWR (RFC 3168 6.1.1)
    public TcpSynOptions Options;

    public bool Answered;       // a SYN-ACK went to it,
    public uint AnsweredIsn;    // carrying this ISN of the other side (the candidate's IRS)
}

/// <summary>One side of a splice: a peer and the router port it was told to dial.</summary>
internal struct Leg
{
    public uint Peer;
    public ushort RouterPort;

    // This side's SYN: its first candidate until one proves itself, then the proven one.
    public bool HasSyn;
    public SynCandidate Syn;
    // Further candidates while none has proven itself; allocated only when a second SYN arrives.
    public SynCandidate[]? Rivals;
    public byte RivalCount;
    /// <summary>Acknowledged its SYN-ACK: the SYN was really this peer's, and it is tracked below.</summary>
    public bool Proven;
    /// <summary>Its proving segment came in on the loopback device: the peer is a process on the router's host.</summary>
    public bool Local;

    // What this peer sends and acknowledges, as far as the segments crossing the router show it
    // (RFC 9293 names, from the peer's point of view). Updated from acceptable segments only.
    public uint SndNxt;         // highest sequence number + length it sent (SND.NXT, or rather SND.MAX)
    public uint LastAck;        // highest acceptable acknowledgment it sent: its RCV.NXT
    public uint RightEdge;      // highest LastAck + window it offered: how far the other side may send
    public uint MaxWindow;      // largest window it offered, scaled (the other side's MAX.SND.WND)

    public ushort PathMtu;      // toward this peer, from relayed "fragmentation needed" errors; 0 = unknown

    public bool FinSent;
    public uint FinSeq;
    public bool FinAcked;

    public long Packets;        // from this peer
    public long Bytes;          // payload bytes from this peer

    public readonly ushort PeerPort => Syn.PeerPort;
    public readonly uint Router => Syn.Router;
    public readonly uint Isn => Syn.Isn;
    public readonly TcpSynOptions Options => Syn.Options;
}

/// <summary>
/// Per-splice state: two legs, addresses, sequence bookkeeping and timestamps; no buffers.
/// Owned by <see cref="SpliceEngine"/> and touched only under its lock.
/// </summary>
internal sealed class Session
{
    public Session(long id, uint peerA, ushort portA, uint peerB, ushort portB, long now)
    {
        Id = id;
        A.Peer = peerA;
        A.RouterPort = portA;
        B.Peer = peerB;
        B.RouterPort = portB;
        CreatedAt = now;
        LastActivity = now;
    }

    public readonly long Id;
    public Leg A;
    public Leg B;
    public SessionState State;
    public long CreatedAt;
    public long LastActivity;
    public long TimeWaitSince;
    public long HandshakeSince; // when the first SYN-ACK went out
    public bool ArrivalReported; // side A's first SYN was reported (SpliceEngine.Arrived)
    /// <summary>
    /// After a reset that crossed but did not end the session: when it ends unless traffic shows it
    /// alive first (0: no such reset pending). <see cref="ResetDisprovedBy"/> says whose traffic counts.
    /// </summary>
    public long ResetDeadline;
    /// <summary>Whose acceptable segments cancel <see cref="ResetDeadline"/>: 0 either side's, 1 A's only, 2 B's only.</summary>
    public byte ResetDisprovedBy;
    /// <summary>A reset the kernel took unjudged is being checked with the peers (SpliceEngine.ResetCheck.cs): <see cref="ResetCheckFlags"/>.</summary>
    public ResetCheckFlags ResetCheck;

    // Offload: a conntrack entry carries the session; the kernel's counters (IP bytes, not payload)
    // are read back from it, and HeaderBytes (IP + TCP per segment) turns them into payload.
    public bool Offloaded;
    public bool OffloadFailed;
    public bool KeptLocal;      // not offloaded: a peer is on the router's host (SpliceEngine.MaybeOffload)
    public long OffloadedAt;
    // The kernel announced this session's entry (or a dump listed it): events before that were
    // about an older entry on the same flows, removed or destroyed before this one was made.
    public bool EntryConfirmed;
    public long EntryRefreshedAt; // when the entry's fixed timeout was last re-armed
    public bool Adopted;        // taken over from an earlier translator: its link and sequence numbers were never ours
    public bool Tightened;      // the kernel's entry tracks windows strictly (or was asked to, and refused)
    public byte HeaderBytes = 52;
    public KernelCounters Kernel;
    public int ListedInDump;    // the last full dump of the conntrack table that listed the entry
    public int Slot = -1;       // in the engine's SessionTable; -1 once released

    public ref Leg Side(bool a) => ref a ? ref A : ref B;
}

/// <summary>Where the check of an unjudged reset stands; none while no check runs.</summary>
[Flags]
internal enum ResetCheckFlags : byte
{
    None = 0,
    Running = 1,
    /// <summary>Side A answered its probe with something other than a reset.</summary>
    AnsweredA = 2,
    AnsweredB = 4,
    /// <summary>The kernel reported the removed entry gone, so a new one for the flow is not taken for it.</summary>
    EntryGone = 8,
}

/// <summary>A snapshot of one session for status queries and Get-GlassSession.</summary>
public sealed record SessionInfo(
    long Id,
    SessionState State,
    string PeerA,
    ushort RouterPortA,
    string PeerB,
    ushort RouterPortB,
    long PacketsFromA,
    long BytesFromA,
    long PacketsFromB,
    long BytesFromB,
    long AgeMilliseconds,
    long IdleMilliseconds,
    bool Offloaded = false);

/// <summary>
/// What the controller learns about a link: "paired" when both SYNs arrived (from then on the
/// session is keyed by its 4-tuples, so both (peer, router port) pairs may be linked again), or
/// the reason it ended.
/// </summary>
public readonly record struct LinkRelease(uint PeerA, ushort RouterPortA, uint PeerB, ushort RouterPortB, string Reason, long SessionId = 0)
{
    public const string PairedReason = "paired";
    /// <summary>Not an end: the first SYN reached side A (the connector's) of a link not yet paired.</summary>
    public const string ArrivedReason = "arrived";
}
