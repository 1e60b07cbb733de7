using Glass.Packets;

namespace Glass.Translator;

/// <summary>
/// Refusing late dials. A link that ended before it paired (cancelled by a side that gave up, or
/// out of time) leaves a short-lived mark on each of its (peer, router port) pairs; a SYN that
/// reaches such a pair is answered with a reset, so the late dialer's connect fails at once with
/// "connection refused" instead of timing out. Other unlinked SYNs stay unanswered: the router
/// does not confirm its ports to scanners, and a link may still come (the original design's LINK
/// datagram can follow the SYNs).
/// </summary>
public sealed partial class SpliceEngine
{
    /// <summary>How long a dial to an ended link is refused: about as long as a client retries its SYN (Linux: 127 s).</summary>
    internal const long RefuseMilliseconds = 180_000;

    /// <summary>Marks kept at most; beyond that new ones are not made (the dial then times out, as before).</summary>
    internal const int MaxRefusals = 65_536;

    private readonly Dictionary<EndpointKey, long> _refuseUntil = new();
    private long _synsRefused;

    /// <summary>An unpaired link ended: refuse dials to its pairs for a while.</summary>
    private void MarkRefused(Session s)
    {
        if (s.State is not (SessionState.Pending or SessionState.Handshake))
            return;
        var until = _clock.NowMilliseconds + RefuseMilliseconds;
        Mark(new EndpointKey(s.A.Peer, s.A.RouterPort), until);
        Mark(new EndpointKey(s.B.Peer, s.B.RouterPort), until);
    }

    private void Mark(EndpointKey key, long until)
    {
        if (_refuseUntil.Count < MaxRefusals || _refuseUntil.ContainsKey(key))
            _refuseUntil[key] = until;
    }

    /// <summary>A SYN no link names: reset it if it dials an ended link's pair (under the lock).</summary>
    private DropReason OnUnlinkedSyn(in TcpPacket tcp)
    {
        var key = new EndpointKey(tcp.SourceAddress, tcp.DestinationPort);
        if (_refuseUntil.TryGetValue(key, out var until))
        {
            if (_clock.NowMilliseconds < until)
            {
                // RFC 9293 3.10.7.1: no ACK in the SYN, so the reset has sequence 0 and acknowledges the SYN.
                RefuseSyn(tcp.DestinationAddress, tcp.DestinationPort, tcp.SourceAddress, tcp.SourcePort, 0, tcp.Sequence + 1);
            }
            else
                _refuseUntil.Remove(key);
        }
        return Count(DropReason.NotLinked);
    }

    /// <summary>
    /// A link ends before it paired: each SYN still waiting on a side that has not proven itself
    /// is refused now, as its retransmission would be, so that peer's connect fails at once. A
    /// candidate already answered is reset at the sequence number its SYN-ACK taught it.
    /// </summary>
    private void RefuseWaitingSyns(Session s)
    {
        RefuseWaiting(ref s.A);
        RefuseWaiting(ref s.B);
    }

    private void RefuseWaiting(ref Leg leg)
    {
        if (leg.Proven || !leg.HasSyn)
            return;
        Refuse(in leg, in leg.Syn);
        for (var i = 0; i < leg.RivalCount; i++)
            Refuse(in leg, in leg.Rivals![i]);
    }

    private void Refuse(in Leg leg, in SynCandidate c) =>
        RefuseSyn(c.Router, leg.RouterPort, leg.Peer, c.PeerPort, c.Answered ? c.AnsweredIsn + 1 : 0, c.Isn + 1);

    /// <summary>Sends the reset that refuses a SYN (an RST+ACK acknowledging it), counted in <c>SynsRefused</c>.</summary>
    private void RefuseSyn(uint router, ushort routerPort, uint peer, ushort peerPort, uint sequence, uint acknowledgment)
    {
        var n = TcpSegmentBuilder.WriteRst(_scratch, router, routerPort, peer, peerPort, sequence, acknowledgment);
        if (SendBuilt(n, peer))
            _synsRefused++;
    }

    /// <summary>Forgets marks whose time is up (from the sweep).</summary>
    private void ForgetRefusals(long now)
    {
        if (_refuseUntil.Count == 0)
            return;
        List<EndpointKey>? gone = null;
        foreach (var (key, until) in _refuseUntil)
        {
            if (now >= until)
                (gone ??= new()).Add(key);
        }
        if (gone is not null)
        {
            foreach (var key in gone)
                _refuseUntil.Remove(key);
        }
    }
}
