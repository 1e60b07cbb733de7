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
/// NfQueueRule), and handed back at once. For a reset of an offloaded session whose entry is in
/// one of those states, <see cref="BeforeConntrack"/> first sets the entry ESTABLISHED: conntrack
/// then judges the reset as for an established session (closed only at exactly the highest
/// acknowledgment the receiver sent, or right after its sender's last segment; one elsewhere in
/// the window crosses for the receiver to challenge, one outside it is refused).
/// <see cref="AfterConntrack"/> reads the outcome: CLOSE ends the session here and there; still
/// ESTABLISHED, the entry gets its state back and the session goes on.</para>
/// <para>The verdict is applied before the verdict call returns (nf_reinject runs the rest of the
/// hooks), and FINs wait in the same queue behind the reset, so nothing moves the entry between
/// the two steps but the reset itself and segments that leave an ESTABLISHED entry as it is.</para>
/// </remarks>
public sealed partial class SpliceEngine
{
    private long _halfClosedResetsChecked, _halfClosedResetsRefused, _resetCheckFailures;

    // errno.h: the entry is gone.
    private const int ENOENT = 2;

    /// <summary>
    /// A segment queued before conntrack (a reset or FIN to the range): for a reset of an offloaded
    /// session that has seen a FIN, holds its entry ESTABLISHED. The caller hands the packet back to
    /// the kernel whatever this returns, then passes the result to <see cref="AfterConntrack"/>.
    /// Never throws on packet contents.
    /// </summary>
    public HeldEntry BeforeConntrack(ReadOnlySpan<byte> packet)
    {
        if (!TcpPacket.TryParse(packet, out var tcp) || (tcp.Flags & TcpFlags.Rst) == 0)
            return default;
        lock (_gate)
        {
            if (_offloader is null
                || !_byFlow.TryGetValue(new FlowKey(tcp.SourceAddress, tcp.SourcePort, tcp.DestinationPort), out var s)
                || !s.Offloaded)
                return default;
            var original = FlowOf(s).Original;
            var errno = _offloader.ReadState(original, out var state);
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
