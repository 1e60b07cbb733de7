using System.Buffers.Binary;
using Glass.Packets;

namespace Glass.Translator;

/// <summary>
/// Resets against offloaded sessions that have seen a FIN. Conntrack checks a reset's sequence
/// number only while an entry is ESTABLISHED: once a FIN crossed (FIN_WAIT, CLOSE_WAIT, LAST_ACK,
/// TIME_WAIT) it takes any reset with the right addresses and ports to CLOSE
/// (tcp_can_early_drop, nf_conntrack_proto_tcp.c), and the session would end on a stranger's word.
/// </summary>
/// <remarks>
/// <para>So every reset and FIN to the range is queued before conntrack sees it (raw PREROUTING,
/// NfQueueRule). One of an offloaded session goes back to the kernel at once; for a reset whose
/// entry is in one of those states, <see cref="BeforeConntrack"/> first sets the entry
/// ESTABLISHED: conntrack then judges the reset as for an established session (closed only at
/// exactly the highest acknowledgment the receiver sent, or right after its sender's last
/// segment; one elsewhere in the window crosses for the receiver to challenge, one outside it is
/// refused). <see cref="AfterConntrack"/> reads the outcome: CLOSE ends the session here and
/// there; still ESTABLISHED, the entry gets its state back and the session goes on.</para>
/// <para>The verdict is applied before the verdict call returns (nf_reinject runs the rest of the
/// hooks), and FINs wait in the same queue behind the reset, so nothing moves the entry between
/// the two steps but the reset itself and segments that leave an ESTABLISHED entry as it is.</para>
/// <para>A FIN or reset of a session relayed here is handled where it is, as if the INPUT rule
/// had queued it: handed back, it would meet the queue again behind segments that came after it,
/// and a FIN that came back after the ACK that offloads its session would be relayed past the
/// new entry, which would then never see both FINs.</para>
/// </remarks>
public sealed partial class SpliceEngine
{
    private long _halfClosedResetsChecked, _halfClosedResetsRefused, _resetCheckFailures;

    // errno.h: the entry is gone.
    private const int ENOENT = 2;

    /// <summary>
    /// A packet queued before conntrack (a reset or FIN to the range). One of an offloaded session
    /// is the kernel's: the result is <see cref="DropReason.LeftToKernel"/>, for an accept verdict
    /// followed by <see cref="AfterConntrack"/> with <paramref name="held"/>; for a reset whose
    /// entry has seen a FIN, the entry is held ESTABLISHED meanwhile. Anything else is processed
    /// as <see cref="Process(Span{byte}, QueuedPacketInfo)"/> would. Never throws on packet contents.
    /// </summary>
    public DropReason BeforeConntrack(Span<byte> packet, QueuedPacketInfo info, out HeldEntry held)
    {
        held = default;
        // Headers only: a queued GSO packet may be cut short, and the kernel carries it anyway.
        if (TryReadFlow(packet, out var source, out var sourcePort, out var destinationPort, out var flags))
        {
            lock (_gate)
            {
                if (_offloader is not null
                    && _byFlow.TryGetValue(new FlowKey(source, sourcePort, destinationPort), out var s) && s.Offloaded)
                {
                    if ((flags & TcpFlags.Rst) != 0)
                        held = HoldEstablished(s);
                    return DropReason.LeftToKernel;
                }
            }
        }
        return Process(packet, info);
    }

    /// <summary>Sets an offloaded session's entry ESTABLISHED for a reset when it has seen a FIN.</summary>
    private HeldEntry HoldEstablished(Session s)
    {
        var original = FlowOf(s).Original;
        var errno = _offloader!.ReadState(original, out var state);
        if (errno != 0)
        {
            // Gone (its destroy event is on the way), or ctnetlink failed: the reset goes on as it is.
            if (errno != ENOENT)
                ResetCheckFailed(errno);
            return default;
        }
        if (state is not (KernelTcpState.FinWait or KernelTcpState.CloseWait or KernelTcpState.LastAck or KernelTcpState.TimeWait))
            return default;
        errno = _offloader.SetState(original, KernelTcpState.Established);
        if (errno != 0)
        {
            ResetCheckFailed(errno);
            return default;
        }
        _halfClosedResetsChecked++;
        return new HeldEntry(s.Id, original, state);
    }

    /// <summary>
    /// The source, ports and flags of an IPv4 TCP segment from its headers alone (a queued packet
    /// may be cut short); false when they are not all there or it is no first TCP fragment.
    /// </summary>
    private static bool TryReadFlow(ReadOnlySpan<byte> packet, out uint source, out ushort sourcePort, out ushort destinationPort, out TcpFlags flags)
    {
        source = 0;
        sourcePort = destinationPort = 0;
        flags = 0;
        if (packet.Length < Ipv4Layout.MinHeaderLength || packet[Ipv4Layout.VersionIhl] >> 4 != Ipv4Layout.Version
            || packet[Ipv4Layout.Protocol] != Ipv4Layout.ProtocolTcp
            || (BinaryPrimitives.ReadUInt16BigEndian(packet[Ipv4Layout.FlagsFragment..]) & Ipv4Layout.FragmentOffsetMask) != 0)
            return false;
        var ihl = (packet[Ipv4Layout.VersionIhl] & 0x0F) * 4;
        if (ihl < Ipv4Layout.MinHeaderLength || packet.Length < ihl + TcpLayout.MinHeaderLength)
            return false;
        source = BinaryPrimitives.ReadUInt32BigEndian(packet[Ipv4Layout.SourceAddress..]);
        sourcePort = BinaryPrimitives.ReadUInt16BigEndian(packet[(ihl + TcpLayout.SourcePort)..]);
        destinationPort = BinaryPrimitives.ReadUInt16BigEndian(packet[(ihl + TcpLayout.DestinationPort)..]);
        flags = (TcpFlags)packet[ihl + TcpLayout.Flags];
        return true;
    }

    /// <summary>
    /// After conntrack took the reset <see cref="BeforeConntrack"/> held an entry for: a reset it
    /// took as exact (CLOSE) ends the session; otherwise the entry gets back the state it had.
    /// </summary>
    public void AfterConntrack(in HeldEntry held)
    {
        if (held.SessionId == 0)
            return;
        lock (_gate)
        {
            // Ended meanwhile (the CLOSE event came first), or its entry with it.
            if (_offloader is null || !_sessions.TryGetValue(held.SessionId, out var s) || !s.Offloaded)
                return;
            var errno = _offloader.ReadState(held.Original, out var state);
            if (errno != 0)
            {
                if (errno != ENOENT)
                    ResetCheckFailed(errno);
                return;
            }
            if (state == KernelTcpState.Close)
            {
                // It crossed already: end it here and there, as on the CLOSE event that follows.
                s.LastActivity = _clock.NowMilliseconds;
                Release(s, "reset");
                return;
            }
            _halfClosedResetsRefused++;
            // Anything else moved it on from ESTABLISHED: nothing of the held state is left to restore.
            if (state == KernelTcpState.Established && (errno = _offloader.SetState(held.Original, held.Previous)) != 0)
                ResetCheckFailed(errno); // left ESTABLISHED: strict, and its close tracked from there
        }
    }

    private void ResetCheckFailed(int errno)
    {
        _resetCheckFailures++;
        LastResetCheckErrno = errno;
    }

    /// <summary>The errno of the last failed state read or change of a reset check, 0 when none failed.</summary>
    public int LastResetCheckErrno { get; private set; }
}

/// <summary>
/// An offloaded session's entry that <see cref="SpliceEngine.BeforeConntrack"/> holds ESTABLISHED
/// while conntrack judges a reset, and the state it had; default when none is held.
/// </summary>
public readonly record struct HeldEntry(long SessionId, FlowTuple Original, KernelTcpState Previous);
