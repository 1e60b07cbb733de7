using Glass.Packets;

namespace Glass.Translator;

public sealed partial class SpliceEngine
{
    /// <summary>
    /// A "fragmentation needed" error about a segment we relayed toward one peer is really about
    /// the other peer's segment: readdress it to that peer, quoting the segment as that peer sent
    /// it, so its TCP lowers its path MTU. An error about a relayed flow that fails the checks is
    /// dropped. Any other ICMP the queue brings (it takes every "fragmentation needed" error the
    /// kernel could not match to a connection of its own) is none of the splice's business: it is
    /// left to the kernel (an accept verdict), so path MTU discovery of the router's own
    /// connections (the controller's, sshd's) keeps working.
    /// </summary>
    private DropReason OnIcmp(Span<byte> packet)
    {
        if (!IcmpTooBig.TryParse(packet, out var m) || !IcmpTooBig.VerifyChecksum(packet, m))
            return Count(DropReason.LeftToKernel);
        lock (_gate)
        {
            // The quoted segment went from (router, X.RouterPort) to (X.Peer, X.PeerPort).
            if (!_byFlow.TryGetValue(new FlowKey(m.QuotedDestination, m.QuotedDestinationPort, m.QuotedSourcePort), out var s))
                return Count(DropReason.LeftToKernel);
            var toA = s.A.Peer == m.QuotedDestination && s.A.RouterPort == m.QuotedSourcePort;
            ref var to = ref s.Side(toA);
            ref var origin = ref s.Side(!toA);
            // Only segments that crossed can be quoted: from a proven side to the flow it relays to.
            if (!origin.Proven || !CanCross(s, !toA) || to.Syn.PeerPort != m.QuotedDestinationPort)
                return Count(DropReason.IcmpUnhandled);
            // RFC 5927 4.1: believe only errors quoting a sequence number the receiver could still
            // be waiting for (SND.UNA <= SEG.SEQ <= SND.NXT of the sender), with a usable MTU, so a
            // blind forger cannot shrink a peer's segments. Sessions adopted from an earlier
            // translator have no sequence numbers to check against (the kernel translates theirs).
            if (m.Mtu < 68 || s.Adopted || !SeqBetween(m.QuotedSequence, to.LastAck, origin.SndNxt))
                return Count(DropReason.IcmpUnhandled);
            // Segments the kernel cuts from super-packets bound for this peer must fit too.
            if (to.PathMtu == 0 || m.Mtu < to.PathMtu)
                to.PathMtu = m.Mtu;
            IcmpTooBig.Rewrite(packet, m, origin.Router, origin.Peer,
                origin.Peer, origin.PeerPort, origin.Router, origin.RouterPort);
            // The error's own IP options would name hops of the other side's path.
            var cut = Ipv4Options.Strip(packet, m.IpHeaderLength, m.TotalLength);
            if (cut > 0)
                _optionsStripped++;
            if (!_sender.Send(packet[cut..m.TotalLength], origin.Peer))
                return Count(DropReason.SendFailed);
            _icmpRelayed++;
            return DropReason.None;
        }
    }
}
