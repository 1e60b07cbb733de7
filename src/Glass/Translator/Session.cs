using Glass.Packets;

namespace Glass.Translator;

public enum SessionState
{
    /// <summary>Linked by the controller; waiting for one or both SYNs.</summary>
    Pending,
    /// <summary>Both SYNs seen and answered with SYN-ACKs; waiting for the first ACK.</summary>
    Handshake,
    Established,
    /// <summary>At least one side sent FIN.</summary>
    Closing,
    /// <summary>Both FINs acknowledged; the mapping lingers for late retransmissions.</summary>
    TimeWait,
}

/// <summary>One side of a splice: a peer and the router port it was told to dial.</summary>
internal struct Leg
{
    public uint Peer;
    public ushort RouterPort;
    public ushort PeerPort;     // 0 until this side's SYN arrives
    public uint Router;         // the router address this side dialled, from its SYN

    public bool HasSyn;
    public uint Isn;
    public ushort SynWindow;
    public bool EcnSetup;       // SYN carried ECE and CWR (RFC 3168 6.1.1)
    public TcpSynOptions Options;

    public bool HasAck;         // the fields below hold this peer's latest ACK
    public uint LastAck;
    public ushort LastWindow;

    public ushort PathMtu;      // toward this peer, from relayed "fragmentation needed" errors; 0 = unknown

    public bool FinSent;
    public uint FinSeq;
    public bool FinAcked;

    public long Packets;        // from this peer
    public long Bytes;          // payload bytes from this peer
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
    public long HandshakeSince; // when both SYNs had arrived

    // Offload: a conntrack entry carries the session; the kernel's counters (IP bytes, not payload)
    // are read back from it, and HeaderBytes (IP + TCP per segment) turns them into payload.
    public bool Offloaded;
    public bool OffloadFailed;
    public long OffloadedAt;
    public bool Adopted;        // taken over from an earlier translator: its link was never ours
    public byte HeaderBytes = 52;
    public KernelCounters Kernel;

    public ref Leg Side(bool a) => ref a ? ref A : ref B;
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
}
