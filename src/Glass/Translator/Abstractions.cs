namespace Glass.Translator;

/// <summary>Where the splice engine sends the IPv4 datagrams it rewrote or built (the kernel, or a fake in tests).</summary>
public interface IPacketSender
{
    /// <summary>Sends one complete IPv4 datagram; false when the kernel refused it (counted, never thrown).</summary>
    bool Send(ReadOnlySpan<byte> packet, uint destination);

    /// <summary>
    /// Sends a datagram the kernel must still finish: its TCP checksum and, for a super-packet, its
    /// cutting into segments. A sender that cannot hand such packets to the kernel refuses them.
    /// </summary>
    bool Send(ReadOnlySpan<byte> packet, uint destination, SendOffload offload) =>
        offload.IsNone && Send(packet, destination);
}

/// <summary>A monotonic clock, injected so that expiry is tested without sleeping.</summary>
public interface IClock
{
    long NowMilliseconds { get; }
}

public sealed class SystemClock : IClock
{
    public static readonly SystemClock Instance = new();
    public long NowMilliseconds => Environment.TickCount64;
}

/// <summary>One direction of a TCP flow as conntrack keys it; addresses in host order.</summary>
public readonly record struct FlowTuple(uint Source, ushort SourcePort, uint Destination, ushort DestinationPort);

/// <summary>
/// An established splice as one NAT entry: the original direction is A's flow to the router
/// (A → router:port-a); the reply direction is B's (B → router:port-b). So the kernel rewrites A's
/// segments to router:port-b → B (DNAT to the reply's source, SNAT to the reply's destination) and
/// B's back to router:port-a → A, which is exactly the splice once both ISNs are mirrored.
/// </summary>
/// <param name="ScaleOriginal">The window shift of A's segments (RFC 7323), -1 when the splice has no window scaling.</param>
/// <param name="ScaleReply">The window shift of B's segments, -1 when the splice has no window scaling.</param>
/// <param name="SackPermitted">Both sides may send SACK blocks.</param>
public readonly record struct OffloadedFlow(FlowTuple Original, FlowTuple Reply, sbyte ScaleOriginal = -1, sbyte ScaleReply = -1, bool SackPermitted = false);

/// <summary>
/// Hands established splices to the kernel (conntrack NAT entries) and takes them back. Called
/// under the engine's lock, from the packet thread or the kernel-event thread.
/// </summary>
public interface IFlowOffloader
{
    /// <summary>Creates the entry; 0 on success, else the errno the kernel answered.</summary>
    int Offload(in OffloadedFlow flow);

    /// <summary>Removes the entry whose original direction is <paramref name="original"/>; best effort.</summary>
    void Remove(in FlowTuple original);

    /// <summary>
    /// Makes the entry track the TCP windows strictly from now on (its "liberal" tracking off), once
    /// it has seen both directions; 0 on success, else the errno the kernel answered.
    /// </summary>
    int Tighten(in FlowTuple original);

    /// <summary>
    /// Re-arms the entry's timeout (the idle timeout plus a margin) and keeps packets from changing
    /// it; 0 on success, else the errno the kernel answered. Entries are created so already.
    /// </summary>
    int Refresh(in FlowTuple original);
}

/// <summary>A conntrack entry's counters: packets and IP bytes from A (original) and from B (reply).</summary>
public readonly record struct KernelCounters(ulong PacketsA, ulong BytesA, ulong PacketsB, ulong BytesB);

/// <summary>What the kernel says became of an offloaded session's TCP connection.</summary>
public enum KernelFlowState
{
    Established,
    /// <summary>One side sent FIN.</summary>
    Closing,
    /// <summary>Both FINs acknowledged.</summary>
    TimeWait,
    /// <summary>Ended by a reset.</summary>
    Reset,
}
