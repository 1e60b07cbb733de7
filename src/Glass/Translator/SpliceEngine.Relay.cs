using Glass.Packets;

namespace Glass.Translator;

/// <remarks>
/// <para><b>Which segments the engine believes.</b> The engine buffers nothing, but a forged
/// segment must not steer it: per side it tracks the highest sequence number sent (SND.NXT), the
/// highest acknowledgment sent (that side's RCV.NXT), the right edge of the window it offered and
/// the largest window it offered. A segment changes that state, or the session's, only when it is
/// acceptable: it lies within what the receiver offered and not more than a window behind what
/// its sender sent (conntrack's bounds I and II), and any ACK in it lies between what the other
/// side sent and a window below what it had acknowledged (RFC 5961 5.2). Segments that fail are
/// relayed all the same, for the endpoint to judge (a blind forgery meets its challenge ACK,
/// RFC 5961), and counted; they change nothing here but the session's last activity.</para>
/// <para>A reset ends the session at once only at exactly the receiver's RCV.NXT as the engine
/// knows it (the last acknowledgment the receiver sent), and soon when it is at exactly the end of
/// what its sender sent (the receiver's RCV.NXT once data in flight arrived). One elsewhere inside
/// the window is relayed, and the receiver, when it is a live RFC 5961 endpoint, answers it with a
/// challenge ACK, which shows the session alive; when nothing crosses for the transitory timeout
/// after it, the session ends as reset (an endpoint without RFC 5961 took it). A reset outside
/// the window is dropped. A FIN counts only inside the receiver's window, and
/// data after a FIN that counted (past it, or after it was acknowledged) shows that FIN was not the
/// sender's: it is forgotten, and a session in TIME_WAIT returns to Established or Closing.</para>
/// </remarks>
public sealed partial class SpliceEngine
{
    private DropReason Relay(Session s, bool isA, int index, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info)
    {
        if (s.State == SessionState.Pending)
            return Count(DropReason.HandshakeIncomplete);

        ref var from = ref s.Side(isA);
        var flags = tcp.Flags;
        if (!from.Proven)
        {
            if ((flags & TcpFlags.Rst) != 0)
                return OnCandidateReset(s, isA, index, packet, tcp, info);
            if (!Proves(s, isA, in Candidate(ref from, index), in tcp))
                return Count(DropReason.HandshakeIncomplete);
            if (!Commit(s, isA, index))
                return Count(DropReason.HandshakeConflict);
            from.Local = info.Local;
        }
        if (!CanCross(s, isA))
            return Count(DropReason.HandshakeIncomplete);

        ref var to = ref s.Side(!isA);
        var now = _clock.NowMilliseconds;
        if (s.ResetCheck != ResetCheckFlags.None)
            return OnResetCheckSegment(s, isA, packet, tcp, info, now);
        if (s.Adopted)
        {
            // An earlier translator's session: its sequence numbers were never seen here, so nothing
            // in it can be judged; the kernel carries it and reports its end.
            if ((flags & TcpFlags.Rst) != 0)
                return Count(DropReason.RstOutOfWindow);
            s.LastActivity = now;
            return Forward(ref from, in to, packet, tcp, info);
        }
        if ((flags & TcpFlags.Rst) != 0)
            return OnReset(s, isA, packet, tcp, info, now);

        s.LastActivity = now;
        if (Unacceptable(in from, in to, in tcp) is { } why)
        {
            Count(why);
            return Forward(ref from, in to, packet, tcp, info);
        }
        Track(s, isA, packet, in tcp, in info, now);

        var result = Forward(ref from, in to, packet, tcp, info);
        if (result == DropReason.None && (flags & TcpFlags.Ack) != 0)
            MaybeOffload(s);
        return result;
    }

    /// <summary>
    /// Why a segment from <paramref name="from"/> to <paramref name="to"/> is not acceptable, or null
    /// when it is. The bounds are conntrack's (Rooij, "Real stateful TCP packet filtering in IP
    /// Filter") with RFC 5961's lower bound for acknowledgments:
    /// <code>
    /// I.   SEG.SEQ      &lt;= to.RightEdge                      (within what the receiver offered)
    /// II.  SEG.SEQ+LEN  >= from.SndNxt - to.MaxWindow         (not more than a window behind)
    /// III. SEG.ACK      &lt;= to.SndNxt                         (acknowledges only data sent)
    /// IV.  SEG.ACK      >= from.LastAck - from.MaxWindow      (SND.UNA - MAX.SND.WND, RFC 5961 5.2)
    /// </code>
    /// </summary>
    private static IgnoredReason? Unacceptable(in Leg from, in Leg to, in TcpPacket tcp)
    {
        var seq = tcp.Sequence;
        if (!SeqLe(seq, to.RightEdge) || !SeqGe(seq + tcp.SegmentLength, from.SndNxt - to.MaxWindow))
            return IgnoredReason.OutOfWindow;
        if ((tcp.Flags & TcpFlags.Ack) == 0)
            return null;
        var ack = tcp.Acknowledgment;
        if (!SeqLe(ack, to.SndNxt))
            return IgnoredReason.AckUnsent;
        if (!SeqGe(ack, from.LastAck - from.MaxWindow))
            return IgnoredReason.AckTooOld;
        return null;
    }

    /// <summary>Takes an acceptable segment's sequence numbers, window and FIN into the session's state.</summary>
    private void Track(Session s, bool isA, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info, long now)
    {
        ref var from = ref s.Side(isA);
        ref var to = ref s.Side(!isA);
        var flags = tcp.Flags;
        var seq = tcp.Sequence;
        var end = seq + tcp.SegmentLength;
        var dataEnd = seq + (uint)tcp.PayloadLength;
        var revoked = false;
        if (tcp.PayloadLength > 0 && from.FinSent
            && (SeqGt(dataEnd, from.FinSeq) || (from.FinAcked && (flags & TcpFlags.Fin) == 0)))
        {
            // Data past its FIN, or after its FIN was acknowledged: that FIN was someone else's.
            from.FinSent = false;
            from.FinAcked = false;
            revoked = true;
            Count(IgnoredReason.FinRevoked);
            // The forged FIN moved this side's SND.NXT past the real stream: take it back.
            if (SeqLt(dataEnd, from.SndNxt))
                from.SndNxt = dataEnd;
        }
        if (SeqGt(end, from.SndNxt))
            from.SndNxt = end;
        // So did a forged ACK of it the other side's RCV.NXT.
        if (revoked && SeqGt(to.LastAck, from.SndNxt))
            to.LastAck = from.SndNxt;
        if ((flags & TcpFlags.Ack) != 0)
        {
            var ack = tcp.Acknowledgment;
            if (SeqGt(ack, from.LastAck))
                from.LastAck = ack;
            var window = (uint)tcp.Window << WindowShift(s, isA);
            if (window > from.MaxWindow)
                from.MaxWindow = window;
            if (SeqGt(ack + window, from.RightEdge))
                from.RightEdge = ack + window;
            // Acknowledging a FIN moves the session toward release, so that ACK must be genuine.
            if (to.FinSent && !to.FinAcked && SeqGe(ack, to.FinSeq + 1)
                && (info.ChecksumPartial || Checksum.VerifyTcp(packet, tcp)))
                to.FinAcked = true;
        }
        // A reset that crossed before was not the end of this session.
        if (s.ResetDeadline != 0 && (s.ResetDisprovedBy == 0 || s.ResetDisprovedBy == (isA ? 1 : 2)))
            s.ResetDeadline = 0;

        if ((flags & TcpFlags.Fin) != 0 && !from.FinSent)
        {
            // In the receiver's window; one already acknowledged (a FIN retransmitted) counts too.
            if (SeqBetween(dataEnd, to.LastAck - 1, to.RightEdge))
            {
                from.FinSent = true;
                from.FinSeq = dataEnd;
                from.FinAcked = SeqGe(to.LastAck, dataEnd + 1);
            }
            else
            {
                Count(IgnoredReason.FinOutOfWindow);
            }
        }
        UpdateCloseState(s, now);
    }

    /// <summary>Established, Closing or TIME_WAIT, from the FINs that count; nothing before the pairing.</summary>
    private void UpdateCloseState(Session s, long now)
    {
        if (s.State < SessionState.Established)
            return;
        if (!s.A.FinSent && !s.B.FinSent)
            s.State = SessionState.Established;
        else if (s.A.FinAcked && s.B.FinAcked)
        {
            if (s.State != SessionState.TimeWait)
                EnterTimeWait(s, now);
            else
                s.TimeWaitSince = now; // a retransmission: the linger starts over
        }
        else
            s.State = SessionState.Closing;
    }

    /// <summary>The shift of the windows side <paramref name="isA"/> advertises (RFC 7323: only when both SYNs offered scaling).</summary>
    private static int WindowShift(Session s, bool isA) =>
        s.A.Syn.Options.WindowScale >= 0 && s.B.Syn.Options.WindowScale >= 0 ? s.Side(isA).Syn.Options.WindowScale : 0;

    /// <summary>
    /// A reset from a side that proved itself (RFC 5961 3.2):
    /// <list type="bullet">
    /// <item>at exactly the receiver's RCV.NXT (its last acknowledgment) it crosses and ends the session;</item>
    /// <item>at exactly the end of what its sender sent, it is what the receiver expects once the data
    /// still in flight reached it (a sender that aborts right after writing), whose acknowledgment has
    /// not crossed yet: it crosses, and the session ends after <see cref="ResetConfirmMilliseconds"/>
    /// unless its sender sends again (were data lost, the receiver's challenge ACK draws an exact
    /// reset from the sender's kernel, which ends it at once). A blind forger cannot know that number
    /// without having had a forged segment accepted first;</item>
    /// <item>elsewhere inside the window it crosses (the receiver challenges it) and the session stays,
    /// ending after the transitory timeout only if nothing acceptable crosses in the meantime;</item>
    /// <item>outside the window it is dropped.</item>
    /// </list>
    /// </summary>
    private DropReason OnReset(Session s, bool isA, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info, long now)
    {
        ref var from = ref s.Side(isA);
        ref var to = ref s.Side(!isA);
        var seq = tcp.Sequence;
        if (seq == to.LastAck)
        {
            // Keep the session when the reset could not be sent: the peer's retransmission retries it.
            var sent = Forward(ref from, in to, packet, tcp, info);
            if (sent == DropReason.None)
                Release(s, "reset");
            return sent;
        }
        if (!SeqGt(seq, to.LastAck) || !SeqLt(seq, to.RightEdge))
            return Count(DropReason.RstOutOfWindow);
        var result = Forward(ref from, in to, packet, tcp, info);
        if (result != DropReason.None)
            return result;
        if (seq == from.SndNxt)
        {
            var deadline = now + ResetConfirmMilliseconds;
            if (s.ResetDeadline == 0 || deadline < s.ResetDeadline)
            {
                s.ResetDeadline = deadline;
                s.ResetDisprovedBy = (byte)(isA ? 1 : 2);
            }
        }
        else
        {
            Count(IgnoredReason.ResetNotExact);
            if (s.ResetDeadline == 0)
            {
                s.ResetDeadline = now + Ms(_options.TransitoryTimeout);
                s.ResetDisprovedBy = 0;
            }
        }
        return result;
    }

    /// <summary>
    /// How long a reset at the end of its sender's stream waits for the receiver's side of the story
    /// before it ends the session: conntrack's CLOSE timeout.
    /// </summary>
    internal const long ResetConfirmMilliseconds = 10_000;

    /// <summary>
    /// A reset from a side that has not proved itself: its host answering the SYN-ACK sent to it
    /// (sequence number = that SYN-ACK's acknowledgment, RFC 9293 3.10.7.1) disowns the SYN, which
    /// is forgotten. The link is lost only when the other side was answered with that SYN's ISN:
    /// the reset crosses to it when it is exact there, and the session ends. Otherwise (a spoofed
    /// SYN, or one with rivals) the side waits for its other candidates or its next SYN.
    /// </summary>
    private DropReason OnCandidateReset(Session s, bool isA, int index, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info)
    {
        ref var leg = ref s.Side(isA);
        ref var c = ref Candidate(ref leg, index);
        if (!c.Answered || tcp.Sequence != c.Isn + 1)
            return Count(DropReason.RstOutOfWindow);
        ref var other = ref s.Side(!isA);
        if (leg.RivalCount > 0 || !AnsweredFor(in other, c.Isn))
        {
            RemoveCandidate(s, ref leg, index);
            _synsDisowned++;
            return Count(DropReason.HandshakeIncomplete);
        }
        if (other.HasSyn && other.RivalCount == 0 && other.Syn.Answered && other.Syn.AnsweredIsn == c.Isn)
        {
            var sent = Forward(ref leg, in other, packet, tcp, info);
            if (sent == DropReason.None)
                Release(s, "reset");
            return sent;
        }
        // The other side was answered for another SYN: it hears of the end from a reset of our own.
        ResetProvenSides(s);
        Release(s, "reset");
        return Count(DropReason.HandshakeIncomplete);
    }

    /// <summary>Whether any candidate of <paramref name="leg"/> was answered with <paramref name="isn"/>.</summary>
    private static bool AnsweredFor(in Leg leg, uint isn)
    {
        if (leg.HasSyn && leg.Syn.Answered && leg.Syn.AnsweredIsn == isn)
            return true;
        for (var i = 0; i < leg.RivalCount; i++)
        {
            if (leg.Rivals![i].Answered && leg.Rivals[i].AnsweredIsn == isn)
                return true;
        }
        return false;
    }

    private void RemoveCandidate(Session s, ref Leg leg, int index)
    {
        ForgetFlow(s, leg.Peer, Candidate(ref leg, index).PeerPort, leg.RouterPort);
        if (leg.RivalCount == 0)
        {
            // Its only SYN: the side is as before any SYN arrived.
            leg.HasSyn = false;
            leg.Syn = default;
            return;
        }
        if (index < 0)
        {
            leg.Syn = leg.Rivals![0];
            index = 0;
            InitSequence(ref leg);
        }
        Array.Copy(leg.Rivals!, index + 1, leg.Rivals!, index, leg.RivalCount - index - 1);
        leg.RivalCount--;
    }

    private DropReason Forward(ref Leg from, in Leg to, Span<byte> packet, TcpPacket tcp, in QueuedPacketInfo info)
    {
        if (tcp.IpHeaderLength > Ipv4Layout.MinHeaderLength)
        {
            // IP options (Record Route, Timestamp, ...) would carry one side's hops to the other.
            var cut = Ipv4Options.Strip(packet, tcp.IpHeaderLength, tcp.TotalLength);
            packet = packet[cut..];
            tcp = tcp with { IpHeaderLength = Ipv4Layout.MinHeaderLength, TotalLength = tcp.TotalLength - cut };
            _optionsStripped++;
        }
        SendOffload offload = default;
        if (info.Gso)
        {
            // One header for many segments: the kernel cuts it and checksums each piece.
            if (info.ChecksumPartial)
                TcpRewriter.RewritePartial(packet, tcp, to.Router, to.RouterPort, to.Peer, to.PeerPort);
            else
                TcpRewriter.RewriteToPartial(packet, tcp, to.Router, to.RouterPort, to.Peer, to.PeerPort);
            offload = new SendOffload(ChecksumPartial: true, SegmentSize(in to, in from, in tcp));
        }
        else if (info.ChecksumPartial)
        {
            TcpRewriter.RewritePartial(packet, tcp, to.Router, to.RouterPort, to.Peer, to.PeerPort);
            offload = new SendOffload(ChecksumPartial: true, SegmentSize: 0);
        }
        else
        {
            TcpRewriter.Rewrite(packet, tcp, to.Router, to.RouterPort, to.Peer, to.PeerPort);
        }
        if (!_sender.Send(packet.Slice(0, tcp.TotalLength), to.Peer, offload))
            return Count(DropReason.SendFailed);
        from.Packets++;
        from.Bytes += tcp.PayloadLength;
        _relayed++;
        _relayedBytes += tcp.PayloadLength;
        return DropReason.None;
    }

    /// <summary>
    /// The TCP payload per segment when the kernel cuts a super-packet bound for <paramref name="to"/>:
    /// the MSS both ends were offered in their SYN-ACKs, lowered to the path MTU toward the
    /// receiver that relayed "fragmentation needed" errors reported, less this packet's IP and TCP
    /// options. Not the sender's own segment size, which the queue does not report: the kernel may
    /// cut the stream at other points, which TCP does not mind, but never into larger segments than
    /// the receiver and its path take.
    /// </summary>
    internal ushort SegmentSize(in Leg to, in Leg from, in TcpPacket tcp)
    {
        int mss = AgreedMss(in to.Syn.Options, in from.Syn.Options, _options.MaxSegmentSize);
        if (to.PathMtu != 0)
            mss = Math.Min(mss, to.PathMtu - Ipv4Layout.MinHeaderLength - TcpLayout.MinHeaderLength);
        var size = mss - (tcp.TcpHeaderLength - TcpLayout.MinHeaderLength) - (tcp.IpHeaderLength - Ipv4Layout.MinHeaderLength);
        return (ushort)Math.Max(1, size);
    }

    /// <summary>
    /// The MSS offered to both sides: neither may send more than the smaller leg takes, nor more
    /// than the router's own links carry (<paramref name="maxSegmentSize"/>, 0 for no limit).
    /// </summary>
    internal static ushort AgreedMss(in TcpSynOptions a, in TcpSynOptions b, ushort maxSegmentSize)
    {
        var mss = Math.Min(a.Mss == 0 ? DefaultMss : a.Mss, b.Mss == 0 ? DefaultMss : b.Mss);
        mss = Math.Min(mss, MaxQueuedMss);
        return maxSegmentSize > 0 ? Math.Min(mss, maxSegmentSize) : mss;
    }

    /// <summary>
    /// The largest MSS whose segments the queue hands over whole: NFQUEUE copies at most 65531 bytes
    /// (a netlink attribute's length is 16 bits), and a cut segment is dropped. Loopback peers offer
    /// 65495 (lo's MTU), whose full segments would be cut every time, stalling the stream.
    /// </summary>
    internal const ushort MaxQueuedMss = 65531 - Ipv4Layout.MinHeaderLength - TcpLayout.MaxHeaderLength;

    // Serial number arithmetic (RFC 1982) over 32-bit sequence numbers.
    private static bool SeqGe(uint a, uint b) => (int)(a - b) >= 0;
    private static bool SeqGt(uint a, uint b) => (int)(a - b) > 0;
    private static bool SeqLe(uint a, uint b) => (int)(a - b) <= 0;
    private static bool SeqLt(uint a, uint b) => (int)(a - b) < 0;
    /// <summary><paramref name="low"/> &lt;= a &lt;= <paramref name="high"/>, modulo 2^32.</summary>
    private static bool SeqBetween(uint a, uint low, uint high) => a - low <= high - low;
}
