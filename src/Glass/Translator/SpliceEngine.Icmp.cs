using Glass.Packets;

namespace Glass.Translator;

public sealed partial class SpliceEngine
{
    /// <summary>
    /// A "fragmentation needed" error about a segment we relayed toward one peer is really about
    /// the other peer's segment: readdress it to that peer, quoting the segment as that peer sent
    /// it, so its TCP lowers its path MTU. Anything else is dropped.
    /// </summary>
    private DropReason OnIcmp(Span<byte> packet)
    {
        if (!IcmpTooBig.TryParse(packet, out var m) || !IcmpTooBig.VerifyChecksum(packet, m))
            return Count(DropReason.IcmpUnhandled);
        lock (_gate)
        {
            // The quoted segment went from (router, X.RouterPort) to (X.Peer, X.PeerPort).
            if (!_byFlow.TryGetValue(new FlowKey(m.QuotedDestination, m.QuotedDestinationPort, m.QuotedSourcePort), out var s))
                return Count(DropReason.NoSession);
            var toA = s.A.Peer == m.QuotedDestination && s.A.PeerPort == m.QuotedDestinationPort && s.A.RouterPort == m.QuotedSourcePort;
            ref var to = ref s.Side(toA);
            ref var origin = ref s.Side(!toA);
            if (!origin.HasSyn)
                return Count(DropReason.NoSession);
            // RFC 5927 4.1: believe only errors quoting a sequence number the receiver could still
            // be waiting for, with a usable MTU, so a blind forger cannot shrink a peer's segments.
            if (m.Mtu < 68 || (to.HasAck && !RstInWindow(in to, in origin, m.QuotedSequence)))
                return Count(DropReason.IcmpUnhandled);
            // Segments the kernel cuts from super-packets bound for this peer must fit too.
            if (to.PathMtu == 0 || m.Mtu < to.PathMtu)
                to.PathMtu = m.Mtu;
            IcmpTooBig.Rewrite(packet, m, origin.Router, origin.Peer,
                origin.Peer, origin.PeerPort, origin.Router, origin.RouterPort);
            if (!_sender.Send(packet[..m.TotalLength], origin.Peer))
                return Count(DropReason.SendFailed);
            _icmpRelayed++;
            return DropReason.None;
        }
    }
}
