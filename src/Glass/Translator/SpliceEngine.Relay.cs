using Glass.Packets;

namespace Glass.Translator;

public sealed partial class SpliceEngine
{
    private DropReason Relay(Session s, bool isA, Span<byte> packet, in TcpPacket tcp)
    {
        if (s.State == SessionState.Pending)
            return Count(DropReason.HandshakeIncomplete);

        ref var from = ref s.Side(isA);
        ref var to = ref s.Side(!isA);
        var flags = tcp.Flags;
        var now = _clock.NowMilliseconds;

        if ((flags & TcpFlags.Rst) != 0)
        {
            if (!RstInWindow(in to, in from, tcp.Sequence))
                return Count(DropReason.RstOutOfWindow);
            // Keep the session when the reset could not be sent: the peer's retransmission retries it.
            var sent = Forward(ref from, in to, packet, tcp);
            if (sent == DropReason.None)
                Release(s, "reset");
            return sent;
        }

        if ((flags & TcpFlags.Ack) != 0)
        {
            if (s.State == SessionState.Handshake)
                s.State = SessionState.Established;
            from.HasAck = true;
            from.LastAck = tcp.Acknowledgment;
            from.LastWindow = tcp.Window;
            // Acknowledging a FIN moves the session toward release, so that ACK must be genuine.
            if (to.FinSent && !to.FinAcked && SeqAtLeast(tcp.Acknowledgment, to.FinSeq + 1) && Checksum.VerifyTcp(packet, tcp))
                to.FinAcked = true;
        }
        if ((flags & TcpFlags.Fin) != 0 && !from.FinSent)
        {
            from.FinSent = true;
            from.FinSeq = tcp.Sequence + (uint)tcp.PayloadLength;
        }
        if (from.FinSent || to.FinSent)
        {
            if (from.FinAcked && to.FinAcked)
            {
                if (s.State != SessionState.TimeWait)
                {
                    s.State = SessionState.TimeWait;
                    s.TimeWaitSince = now;
                }
            }
            else if (s.State != SessionState.TimeWait)
            {
                s.State = SessionState.Closing;
            }
        }

        s.LastActivity = now;
        var result = Forward(ref from, in to, packet, tcp);
        if (result == DropReason.None && (flags & TcpFlags.Ack) != 0)
            MaybeOffload(s);
        return result;
    }

    private DropReason Forward(ref Leg from, in Leg to, Span<byte> packet, in TcpPacket tcp)
    {
        TcpRewriter.Rewrite(packet, tcp, to.Router, to.RouterPort, to.Peer, to.PeerPort);
        if (!_sender.Send(packet.Slice(0, tcp.TotalLength), to.Peer))
            return Count(DropReason.SendFailed);
        from.Packets++;
        from.Bytes += tcp.PayloadLength;
        _relayed++;
        _relayedBytes += tcp.PayloadLength;
        return DropReason.None;
    }

    /// <summary>
    /// RFC 9293 3.10.7.x / RFC 5961 3.2: a reset counts only when its sequence number lies in the
    /// receiver's window, so a blind reset cannot tear down the router's state.
    /// </summary>
    private static bool RstInWindow(in Leg receiver, in Leg sender, uint seq)
    {
        if (!receiver.HasAck)
            return seq == sender.Isn + 1; // handshake: the receiver expects ISN+1
        var shift = receiver.Options.WindowScale >= 0 && sender.Options.WindowScale >= 0 ? receiver.Options.WindowScale : 0;
        var window = Math.Max(1u, (uint)receiver.LastWindow << shift);
        return seq - receiver.LastAck < window;
    }

    // Serial number arithmetic (RFC 1982) over 32-bit sequence numbers.
    private static bool SeqAtLeast(uint a, uint b) => (int)(a - b) >= 0;
}
