using Glass.Packets;

namespace Glass.Translator;

public sealed partial class SpliceEngine
{
    // RFC 9293 3.7.1: the MSS a peer is assumed to accept when its SYN names none.
    private const ushort DefaultMss = 536;

    private DropReason OnSyn(Session s, bool isA, Span<byte> packet, in TcpPacket tcp)
    {
        if (!TcpSynOptions.TryParse(packet.Slice(tcp.OptionsOffset, tcp.OptionsLength), out var options))
            return Count(DropReason.Malformed);

        ref var leg = ref s.Side(isA);
        ref var other = ref s.Side(!isA);
        if (leg.HasSyn)
        {
            if (leg.PeerPort == tcp.SourcePort && leg.Isn == tcp.Sequence)
            {
                // A retransmitted SYN: our SYN-ACK was lost (answer again) or the peer is not here yet.
                if (s.State == SessionState.Pending)
                    return Count(DropReason.WaitingForPeer);
                SendSynAck(s, isA);
                return DropReason.None;
            }
            if (s.State != SessionState.Pending)
                return Count(DropReason.EndpointBusy);
            // A new attempt before the other side arrived replaces the old one.
            _byFlow.Remove(new FlowKey(leg.Peer, leg.PeerPort, leg.RouterPort));
        }

        leg.HasSyn = true;
        leg.PeerPort = tcp.SourcePort;
        leg.Router = tcp.DestinationAddress;
        leg.Isn = tcp.Sequence;
        leg.SynWindow = tcp.Window;
        leg.EcnSetup = (tcp.Flags & (TcpFlags.Ece | TcpFlags.Cwr)) == (TcpFlags.Ece | TcpFlags.Cwr);
        leg.Options = options;
        _byFlow[new FlowKey(leg.Peer, leg.PeerPort, leg.RouterPort)] = s;
        s.LastActivity = _clock.NowMilliseconds;

        if (!other.HasSyn)
            return Count(DropReason.WaitingForPeer);

        s.State = SessionState.Handshake;
        s.HandshakeSince = s.LastActivity;
        // Every segment carries the timestamp option (12 bytes with padding) once both offered it.
        s.HeaderBytes = (byte)(40 + (s.A.Options.HasTimestamps && s.B.Options.HasTimestamps ? 12 : 0));
        // Keyed by its flows from now on: the pairs may carry the next link of these peers.
        ReleaseEndpoints(s);
        Paired?.Invoke(new LinkRelease(s.A.Peer, s.A.RouterPort, s.B.Peer, s.B.RouterPort, LinkRelease.PairedReason, s.Id));
        SendSynAck(s, toA: true);
        SendSynAck(s, toA: false);
        return DropReason.None;
    }

    /// <summary>
    /// Answers one side's SYN as if the other side had: the other's ISN as our sequence number, the
    /// other's SYN window, and options both sides can honour.
    /// </summary>
    private void SendSynAck(Session s, bool toA)
    {
        ref var to = ref s.Side(toA);
        ref var from = ref s.Side(!toA);
        var o = BuildOptions(to.Options, from.Options, _options.MaxSegmentSize);
        var ece = to.EcnSetup && from.EcnSetup;
        var n = TcpSegmentBuilder.WriteSynAck(_scratch, to.Router, to.RouterPort, to.Peer, to.PeerPort,
            from.Isn, to.Isn + 1, from.SynWindow, ece, o);
        if (_sender.Send(_scratch.AsSpan(0, n), to.Peer))
            _synAcks++;
        else
            Count(DropReason.SendFailed);
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
