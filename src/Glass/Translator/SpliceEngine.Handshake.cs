using Glass.Packets;

namespace Glass.Translator;

/// <remarks>
/// <para><b>Who may take a side of a link.</b> A SYN names its sender only by its source address,
/// which anyone can forge, so a SYN from peer A's address to A's router port proves nothing. A
/// side is committed to one SYN only when that SYN's sender acknowledges the SYN-ACK the router
/// sent it (it received it: the address is really its own); until then each side holds up to
/// <see cref="MaxCandidates"/> SYNs ("candidates"), the oldest giving way when more arrive.</para>
/// <para>The catch: the SYN-ACK to one side carries the other side's ISN, and a peer takes the
/// first SYN-ACK it gets for good. So the connector (side A: the controller links the connector
/// as A and the binder as B) proves itself first. A's candidates are answered once B's ISN is
/// settled (B proved itself, or holds exactly one candidate); B's only once A proved itself, with
/// the proven SYN's ISN. A forged SYN from A's address, before or after A's own and before or
/// after B's, thus gets a SYN-ACK (to A's address, which resets it or drops it) but never gives
/// B its ISN: it cannot prove itself without B's ISN, which only A's address received. It costs
/// B one round trip to A more; when A's proving segment carries data, B is answered and the data
/// crosses at once. When A's acknowledgment is lost and A has nothing to send (the server speaks
/// first), B's retransmitted SYN makes the router send A's SYN-ACK again: A, established,
/// answers it with an ACK, which proves it. One exception keeps a contested side from waiting
/// for ever: when B holds several candidates and A one, B's are answered with A's ISN at once
/// and A waits for one of B's to prove itself (A's ISN is then the only one B can be given).
/// When both sides have proven themselves, each must have been answered with the other's ISN;
/// if not (a spoofed SYN was the only candidate when the other side was answered, and the real
/// one came later), both are reset with valid resets, so their applications see a failed
/// connection at once and may retry, instead of waiting for a peer that never speaks. A reset
/// from a candidate's address at the sequence number its SYN-ACK asked for disowns that SYN: it
/// is forgotten, and the link ends only if the other side was answered with its ISN.</para>
/// <para>What is left: (1) a forger who sends a SYN from B's address (the binder's, which
/// connectors are not told) to B's router port before B does, while A holds one SYN, spoils that
/// one connection: A is answered with the forged ISN, and it ends in resets, not a hang. (2) A
/// forger who also forges A's SYN (knowing both peers' addresses and both router ports) knows
/// both ISNs, can acknowledge both SYN-ACKs blind, and so takes the link; the peers' own SYNs
/// then find no link, and their connects time out. The segments of such a stolen splice still
/// go to the real peers' addresses (at the ports the forger named), so it is a denial of
/// service, not an interception. (3) A flood of more than <see cref="MaxCandidates"/> spoofed
/// SYNs per round trip evicts the peer's own SYN each time. (4) When both sides hold several
/// candidates, no ISN is settled and neither is answered until the handshake times out.</para>
/// </remarks>
public sealed partial class SpliceEngine
{
    // RFC 9293 3.7.1: the MSS a peer is assumed to accept when its SYN names none.
    private const ushort DefaultMss = 536;

    /// <summary>SYNs held for one side of a link until one proves itself (the first and up to three rivals).</summary>
    internal const int MaxCandidates = 4;

    private long _proofRetries, _synsDisowned;

    /// <summary>-1 for the leg's own SYN, else the index of the rival whose source port this is.</summary>
    private static int CandidateIndex(in Leg leg, ushort peerPort)
    {
        for (var i = 0; i < leg.RivalCount; i++)
        {
            if (leg.Rivals![i].PeerPort == peerPort)
                return i;
        }
        return -1;
    }

    private static ref SynCandidate Candidate(ref Leg leg, int index) =>
        ref index < 0 ? ref leg.Syn : ref leg.Rivals![index];

    /// <summary>A SYN that found its link by (peer address, router port): a new candidate for that side.</summary>
    private DropReason OnLinkSyn(Session s, bool isA, Span<byte> packet, in TcpPacket tcp)
    {
        if (isA)
            ReportArrival(s);
        if (!TcpSynOptions.TryParse(packet.Slice(tcp.OptionsOffset, tcp.OptionsLength), out var options))
            return Count(DropReason.Malformed);
        ref var leg = ref s.Side(isA);
        if (leg.Proven)
            return Count(DropReason.EndpointBusy); // this side is settled; the SYN is not for this link

        var c = new SynCandidate
        {
            PeerPort = tcp.SourcePort,
            Router = tcp.DestinationAddress,
            Isn = tcp.Sequence,
            SynWindow = tcp.Window,
            EcnSetup = (tcp.Flags & (TcpFlags.Ece | TcpFlags.Cwr)) == (TcpFlags.Ece | TcpFlags.Cwr),
            Options = options,
        };
        int index;
        if (!leg.HasSyn)
        {
            leg.HasSyn = true;
            leg.Syn = c;
            index = -1;
        }
        else
        {
            index = AddRival(s, ref leg, c);
        }
        _byFlow[new FlowKey(leg.Peer, c.PeerPort, leg.RouterPort)] = s;
        s.LastActivity = _clock.NowMilliseconds;

        AnswerReady(s);
        return Candidate(ref s.Side(isA), index).Answered ? DropReason.None : Count(DropReason.WaitingForPeer);
    }

    /// <summary>
    /// Adds a competing SYN for a side; when the side holds <see cref="MaxCandidates"/> already, the
    /// oldest gives way, so spoofed SYNs sent early cannot lock the peer's own (retransmitted) SYN out.
    /// </summary>
    private int AddRival(Session s, ref Leg leg, in SynCandidate c)
    {
        _contested++;
        var rivals = leg.Rivals ??= new SynCandidate[MaxCandidates - 1];
        if (leg.RivalCount == rivals.Length)
        {
            ForgetFlow(s, leg.Peer, leg.Syn.PeerPort, leg.RouterPort);
            leg.Syn = rivals[0];
            Array.Copy(rivals, 1, rivals, 0, leg.RivalCount - 1);
            leg.RivalCount--;
            InitSequence(ref leg);
        }
        rivals[leg.RivalCount] = c;
        return leg.RivalCount++;
    }

    /// <summary>A plain SYN on a flow the engine knows: a retransmission, a new attempt, or a new connection.</summary>
    private DropReason OnFlowSyn(Session s, bool isA, int index, Span<byte> packet, in TcpPacket tcp)
    {
        ref var leg = ref s.Side(isA);
        ref var c = ref Candidate(ref leg, index);
        if (tcp.Sequence == c.Isn)
        {
            // A retransmitted SYN: our SYN-ACK was lost (answer again) or the other side is not here yet.
            if (leg.Proven)
                return Count(DropReason.EndpointBusy); // it acknowledged the SYN-ACK: a stale duplicate
            if (!c.Answered)
            {
                if (!isA)
                    RequestProof(s);
                return Count(DropReason.WaitingForPeer);
            }
            return ResendSynAck(s, isA, in c);
        }
        if (leg.Proven)
            return OnReopeningSyn(s, isA, packet, tcp);
        if (c.Answered)
            return Count(DropReason.EndpointBusy);

        // A new attempt from the same port before it was answered replaces the old one.
        if (!TcpSynOptions.TryParse(packet.Slice(tcp.OptionsOffset, tcp.OptionsLength), out var options))
            return Count(DropReason.Malformed);
        c.Router = tcp.DestinationAddress;
        c.Isn = tcp.Sequence;
        c.SynWindow = tcp.Window;
        c.EcnSetup = (tcp.Flags & (TcpFlags.Ece | TcpFlags.Cwr)) == (TcpFlags.Ece | TcpFlags.Cwr);
        c.Options = options;
        s.LastActivity = _clock.NowMilliseconds;
        AnswerReady(s);
        return Candidate(ref s.Side(isA), index).Answered ? DropReason.None : Count(DropReason.WaitingForPeer);
    }

    /// <summary>
    /// A SYN with a new ISN on the 4-tuple of a session whose side there proved itself long ago: the
    /// peer (or its NAT) reuses the source port, so its old connection is gone at its end. When the
    /// controller linked that (peer, router port) pair for a new connection, the old session gives
    /// way (its other side is reset, so it hears of the end) and the SYN opens the new one, as the
    /// kernel's conntrack reopens a flow on a fresh SYN. Without such a link the SYN is for nothing
    /// here, and a forged SYN must not end a live session, so the old session stays.
    /// </summary>
    private DropReason OnReopeningSyn(Session old, bool fromA, Span<byte> packet, in TcpPacket tcp)
    {
        if (!_byEndpoint.TryGetValue(new EndpointKey(tcp.SourceAddress, tcp.DestinationPort), out var next) || ReferenceEquals(next, old))
            return Count(DropReason.EndpointBusy);
        ref var other = ref old.Side(!fromA);
        if (other.Proven && old.State != SessionState.TimeWait)
            SendReset(in other);
        _reopened++;
        Release(old, "reopened");
        return OnLinkSyn(next, next.A.Peer == tcp.SourceAddress && next.A.RouterPort == tcp.DestinationPort, packet, tcp);
    }

    /// <summary>True when a side's ISN is settled: it proved itself, or it holds exactly one SYN.</summary>
    private static bool Settled(in Leg leg) => leg.HasSyn && (leg.Proven || leg.RivalCount == 0);

    /// <summary>
    /// Whether a side's candidates may be answered with the other side's ISN: A's once B's ISN is
    /// settled; B's once A proved itself, or at once when B holds several and A one (else both would wait).
    /// </summary>
    private static bool MayAnswer(Session s, bool toA) =>
        toA ? Settled(in s.B) : s.A.Proven || (s.B.RivalCount > 0 && Settled(in s.A));

    /// <summary>Answers every candidate not yet answered that <see cref="MayAnswer"/> lets through.</summary>
    private void AnswerReady(Session s)
    {
        var answered = AnswerSide(s, toA: true) | AnswerSide(s, toA: false);
        if (answered && s.State == SessionState.Pending)
        {
            s.State = SessionState.Handshake;
            s.HandshakeSince = _clock.NowMilliseconds;
        }
    }

    private bool AnswerSide(Session s, bool toA)
    {
        ref var leg = ref s.Side(toA);
        ref var other = ref s.Side(!toA);
        if (!leg.HasSyn || !MayAnswer(s, toA))
            return false;
        var answered = false;
        if (!leg.Syn.Answered)
        {
            Answer(ref leg, ref leg.Syn, in other.Syn);
            InitSequence(ref leg);
            answered = true;
        }
        for (var i = 0; i < leg.RivalCount; i++)
        {
            if (!leg.Rivals![i].Answered)
            {
                Answer(ref leg, ref leg.Rivals[i], in other.Syn);
                answered = true;
            }
        }
        return answered;
    }

    private void Answer(ref Leg leg, ref SynCandidate to, in SynCandidate from)
    {
        to.Answered = true;
        to.AnsweredIsn = from.Isn;
        SendSynAck(in leg, in to, in from);
    }

    /// <summary>The same SYN-ACK again, for a retransmitted SYN, on behalf of the SYN it was answered for.</summary>
    private DropReason ResendSynAck(Session s, bool isA, in SynCandidate to) =>
        TryResendSynAck(s, isA, in to)
            ? DropReason.None
            : Count(DropReason.EndpointBusy); // the SYN it was answered for gave way to others

    private bool TryResendSynAck(Session s, bool isA, in SynCandidate to)
    {
        ref var leg = ref s.Side(isA);
        ref var other = ref s.Side(!isA);
        if (other.HasSyn && other.Syn.Isn == to.AnsweredIsn)
        {
            SendSynAck(in leg, in to, in other.Syn);
            return true;
        }
        for (var i = 0; i < other.RivalCount; i++)
        {
            if (other.Rivals![i].Isn == to.AnsweredIsn)
            {
                SendSynAck(in leg, in to, in other.Rivals[i]);
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// B retransmitted its SYN, still unanswered: when A's candidates were answered but none proved
    /// itself, A's acknowledgment may have been lost, and A may have nothing more to send (the server
    /// speaks first). Their SYN-ACKs go out again: a peer that is established answers one it already
    /// took with an ACK (RFC 9293 3.10.7.4; RFC 5961 4.2's challenge ACK), which proves it.
    /// </summary>
    private void RequestProof(Session s)
    {
        ref var a = ref s.A;
        if (!a.HasSyn || a.Proven)
            return;
        for (var i = -1; i < a.RivalCount; i++)
        {
            ref var c = ref Candidate(ref a, i);
            if (c.Answered && TryResendSynAck(s, isA: true, in c))
                _proofRetries++;
        }
    }

    /// <summary>
    /// Answers one side's SYN as if the other side had: the other's ISN as our sequence number, the
    /// other's SYN window, and options both sides can honour.
    /// </summary>
    private void SendSynAck(in Leg leg, in SynCandidate to, in SynCandidate from)
    {
        var o = BuildOptions(to.Options, from.Options, _options.MaxSegmentSize);
        var ece = to.EcnSetup && from.EcnSetup;
        var n = TcpSegmentBuilder.WriteSynAck(_scratch, to.Router, leg.RouterPort, leg.Peer, to.PeerPort,
            from.Isn, to.Isn + 1, from.SynWindow, ece, o);
        if (SendBuilt(n, leg.Peer))
            _synAcks++;
    }

    /// <summary>
    /// The sequence bookkeeping of a leg from its SYN and the SYN-ACK it was answered with, before
    /// its first ACK: it has sent its SYN, expects the other side's ISN + 1, and offered its SYN window.
    /// </summary>
    private static void InitSequence(ref Leg leg)
    {
        leg.SndNxt = leg.Syn.Isn + 1;
        leg.LastAck = leg.Syn.AnsweredIsn + 1;
        leg.MaxWindow = Math.Max(1u, leg.Syn.SynWindow);
        leg.RightEdge = leg.LastAck + leg.MaxWindow;
    }

    /// <summary>
    /// Whether a segment from an unproven candidate proves it: a plain ACK (data and FIN allowed)
    /// of exactly the SYN-ACK it was sent, or of data relayed to it since, from the sequence number
    /// after its SYN onward. Only the candidate's real sender knows the ISN its SYN-ACK carried.
    /// </summary>
    private static bool Proves(Session s, bool isA, in SynCandidate c, in TcpPacket tcp)
    {
        if (!c.Answered || (tcp.Flags & (TcpFlags.Ack | TcpFlags.Syn | TcpFlags.Rst)) != TcpFlags.Ack)
            return false;
        ref var other = ref s.Side(!isA);
        // Data crossed to it only if the other side proved itself for it.
        var partner = other.Proven && other.Syn.Isn == c.AnsweredIsn && other.Syn.AnsweredIsn == c.Isn;
        var first = c.AnsweredIsn + 1;
        var lastAck = partner ? other.SndNxt : first;
        var lastSeq = partner ? other.RightEdge : c.Isn + 1 + ushort.MaxValue;
        return SeqBetween(tcp.Acknowledgment, first, lastAck) && SeqBetween(tcp.Sequence, c.Isn + 1, lastSeq);
    }

    /// <summary>
    /// Commits a side to the candidate that proved itself; forgets its rivals; pairs the link when
    /// the other side proved itself too. False when the two proven sides were answered for other
    /// SYNs than each other's: both are reset and the session ends.
    /// </summary>
    private bool Commit(Session s, bool isA, int index)
    {
        ref var leg = ref s.Side(isA);
        if (index >= 0)
        {
            ForgetFlow(s, leg.Peer, leg.Syn.PeerPort, leg.RouterPort);
            leg.Syn = leg.Rivals![index];
        }
        for (var i = 0; i < leg.RivalCount; i++)
        {
            if (i != index)
                ForgetFlow(s, leg.Peer, leg.Rivals![i].PeerPort, leg.RouterPort);
        }
        leg.Rivals = null;
        leg.RivalCount = 0;
        leg.Proven = true;
        InitSequence(ref leg);

        ref var other = ref s.Side(!isA);
        if (!other.Proven)
        {
            // This side's ISN is settled now (and, for A, proven): the other side's waiting candidates get their SYN-ACKs.
            AnswerReady(s);
            return true;
        }
        if (leg.Syn.AnsweredIsn != other.Syn.Isn || other.Syn.AnsweredIsn != leg.Syn.Isn)
        {
            ResetProvenSides(s);
            Release(s, "reset");
            return false;
        }
        Pair(s);
        return true;
    }

    /// <summary>
    /// Both sides proved themselves for each other: the session is established and keyed by its flows
    /// from now on, so the (peer, router port) pairs may carry the next link of these peers.
    /// </summary>
    private void Pair(Session s)
    {
        s.State = SessionState.Established;
        // Every segment carries the timestamp option (12 bytes with padding) once both offered it.
        s.HeaderBytes = (byte)(40 + (s.A.Options.HasTimestamps && s.B.Options.HasTimestamps ? 12 : 0));
        UpdateCloseState(s, _clock.NowMilliseconds);
        ReleaseEndpoints(s);
        Paired?.Invoke(new LinkRelease(s.A.Peer, s.A.RouterPort, s.B.Peer, s.B.RouterPort, LinkRelease.PairedReason, s.Id));
    }

    /// <summary>
    /// Whether segments from <paramref name="fromA"/>'s proven side may cross to the other: it proved
    /// itself too, or it holds a single candidate answered for this side's SYN (whose SYN-ACK this side
    /// was answered with), which its first ACK will prove.
    /// </summary>
    private static bool CanCross(Session s, bool fromA)
    {
        ref var from = ref s.Side(fromA);
        ref var to = ref s.Side(!fromA);
        if (to.Proven)
            return true;
        return to.HasSyn && to.RivalCount == 0 && to.Syn.Answered
            && to.Syn.AnsweredIsn == from.Syn.Isn && from.Syn.AnsweredIsn == to.Syn.Isn;
    }

    /// <summary>Resets every side that proved itself: a valid reset at the sequence number it expects.</summary>
    private void ResetProvenSides(Session s)
    {
        if (s.A.Proven)
            SendReset(in s.A);
        if (s.B.Proven)
            SendReset(in s.B);
    }

    /// <summary>
    /// Sends a peer a reset it accepts (RFC 5961 3.2): at the sequence number it expects next, as
    /// an RST+ACK acknowledging what it sent.
    /// </summary>
    private void SendReset(in Leg to)
    {
        var n = TcpSegmentBuilder.WriteRst(_scratch, to.Router, to.RouterPort, to.Peer, to.PeerPort, to.LastAck, to.SndNxt);
        SendBuilt(n, to.Peer);
    }

    /// <summary>Sends the first <paramref name="length"/> bytes of the scratch buffer, a segment the engine built; a refusal is counted.</summary>
    private bool SendBuilt(int length, uint peer)
    {
        if (_sender.Send(_scratch.AsSpan(0, length), peer))
            return true;
        Count(DropReason.SendFailed);
        return false;
    }

    /// <summary>The options of the SYN-ACK sent to <paramref name="to"/>, on behalf of <paramref name="from"/>.</summary>
    internal static SynAckOptions BuildOptions(in TcpSynOptions to, in TcpSynOptions from, ushort maxSegmentSize = 0)
    {
        // Both ends must agree on one segment size.
        var mss = AgreedMss(in to, in from, maxSegmentSize);
        var ws = to.WindowScale >= 0 && from.WindowScale >= 0;
        var ts = to.HasTimestamps && from.HasTimestamps;
        return new SynAckOptions
        {
            Mss = mss,
            WindowScale = ws ? from.WindowScale : (sbyte)-1,
            SackPermitted = to.SackPermitted && from.SackPermitted,
            HasTimestamps = ts,
            TsVal = ts ? from.TsVal : 0,
            TsEcr = ts ? to.TsVal : 0,
        };
    }
}
