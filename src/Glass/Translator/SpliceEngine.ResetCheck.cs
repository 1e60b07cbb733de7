using Glass.Packets;

namespace Glass.Translator;

/// <summary>
/// A reset the kernel may have taken without judging it. conntrack checks a reset's number against
/// the highest acknowledgment its entry has seen from the other side; an entry that has carried
/// nothing from one side yet (made after the handshake, whose first exchange crossed the queue
/// before the hand-off, and silent since) has nothing to check against and takes any reset with
/// the flow's addresses and ports, a blind stranger's too. So such a reset does not end the
/// session: the entry is removed (the flow comes back to the queue) and each peer is sent a probe,
/// a keepalive carrying one byte it already has (RFC 9293 3.8.4), in the other peer's name. A live
/// connection answers it with an ACK at once (a segment with data is exempt from Linux's limit on
/// such answers); a host whose connection is gone answers with a reset at the probe's
/// acknowledgment number. Both peers answering: the reset was not theirs, and the session goes
/// back to the kernel. A peer's reset, or silence for <see cref="ResetConfirmMilliseconds"/>: the
/// session ends as reset.
/// </summary>
public sealed partial class SpliceEngine
{
    private static readonly byte[] ProbeByte = [0];

    /// <summary>How long after its removal the entry's destroy event is waited for before a new entry is made anyway.</summary>
    internal const long EntryGoneWaitMilliseconds = 5_000;

    /// <summary>The entry has counted nothing from one side: the kernel had no number to judge a reset by.</summary>
    private static bool EntryMissesASide(Session s) => !s.Adopted && (s.Kernel.PacketsA == 0 || s.Kernel.PacketsB == 0);

    private void StartResetCheck(Session s, long now)
    {
        // What the entry counted stays the session's; the next entry counts from zero.
        s.A.Packets += (long)s.Kernel.PacketsA;
        s.A.Bytes += Payload(s.Kernel.BytesA, s.Kernel.PacketsA, s.HeaderBytes);
        s.B.Packets += (long)s.Kernel.PacketsB;
        s.B.Bytes += Payload(s.Kernel.BytesB, s.Kernel.PacketsB, s.HeaderBytes);
        s.Kernel = default;
        EndOffload(s);
        s.Tightened = false;
        s.LastActivity = now;
        s.ResetCheck = ResetCheckFlags.Running;
        s.ResetDeadline = now + ResetConfirmMilliseconds;
        s.ResetDisprovedBy = 0;
        Count(IgnoredReason.ResetUnjudged);
        Probe(s);
    }

    /// <summary>Probes each peer that has not answered yet (again from the sweep, once a second).</summary>
    private void Probe(Session s)
    {
        if ((s.ResetCheck & ResetCheckFlags.AnsweredA) == 0)
            SendProbe(in s.A, in s.B, WindowShift(s, isA: false));
        if ((s.ResetCheck & ResetCheckFlags.AnsweredB) == 0)
            SendProbe(in s.B, in s.A, WindowShift(s, isA: true));
    }

    /// <summary>
    /// A keepalive to <paramref name="to"/> in <paramref name="from"/>'s name: the last byte of
    /// <paramref name="from"/>'s stream the engine saw, its acknowledgment and window.
    /// </summary>
    private void SendProbe(in Leg to, in Leg from, int fromShift)
    {
        var window = (ushort)Math.Min(ushort.MaxValue, (from.RightEdge - from.LastAck) >> fromShift);
        var n = TcpSegmentBuilder.WriteSegment(_scratch, to.Router, to.RouterPort, to.Peer, to.PeerPort,
            from.SndNxt - 1, from.LastAck, TcpFlags.Ack, window, ProbeByte);
        SendBuilt(n, to.Peer);
    }

    /// <summary>A segment of a session whose reset is being checked: relayed as it is, and taken as that side's answer.</summary>
    private DropReason OnResetCheckSegment(Session s, bool isA, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info, long now)
    {
        ref var from = ref s.Side(isA);
        ref var to = ref s.Side(!isA);
        if ((tcp.Flags & TcpFlags.Rst) != 0)
        {
            // A host without the connection resets the probe at its acknowledgment number; any
            // other reset is the peer's to judge, as a relayed one is.
            if (tcp.Sequence != to.LastAck)
            {
                Count(IgnoredReason.ResetNotExact);
                return Forward(ref from, in to, packet, tcp, info);
            }
            var sent = Forward(ref from, in to, packet, tcp, info);
            Release(s, "reset");
            return sent;
        }
        s.LastActivity = now;
        s.ResetCheck |= isA ? ResetCheckFlags.AnsweredA : ResetCheckFlags.AnsweredB;
        var result = Forward(ref from, in to, packet, tcp, info);
        MaybeEndResetCheck(s, now);
        return result;
    }

    /// <summary>The removed entry's destroy event (it must not be taken for the next entry's).</summary>
    private void OnResetCheckEntryGone(in FlowTuple original)
    {
        if (!TryFindByEntry(original, out var s) || s.ResetCheck == ResetCheckFlags.None)
            return;
        s.ResetCheck |= ResetCheckFlags.EntryGone;
        MaybeEndResetCheck(s, _clock.NowMilliseconds);
    }

    /// <summary>Both peers answered: the session goes back to the kernel, once the old entry is known gone (or long enough removed).</summary>
    private void MaybeEndResetCheck(Session s, long now)
    {
        const ResetCheckFlags both = ResetCheckFlags.AnsweredA | ResetCheckFlags.AnsweredB;
        if ((s.ResetCheck & both) != both)
            return;
        var removedAt = s.ResetDeadline - ResetConfirmMilliseconds;
        if ((s.ResetCheck & ResetCheckFlags.EntryGone) == 0 && now - removedAt < EntryGoneWaitMilliseconds)
            return;
        s.ResetCheck = ResetCheckFlags.None;
        s.ResetDeadline = 0;
        MaybeOffload(s);
    }

    /// <summary>From the sweep: probes again whoever has not answered, or ends a check both answered.</summary>
    private void ContinueResetCheck(Session s, long now)
    {
        if (s.ResetCheck == ResetCheckFlags.None || now >= s.ResetDeadline)
            return;
        Probe(s);
        MaybeEndResetCheck(s, now);
    }
}
