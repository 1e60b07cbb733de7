using Glass.Packets;

namespace Glass.Translator;

public sealed partial class SpliceEngine
{
    private DropReason Relay(Session s, bool isA, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info)
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
            var sent = Forward(ref from, in to, packet, tcp, info);
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
            if (to.FinSent && !to.FinAcked && SeqAtLeast(tcp.Acknowledgment, to.FinSeq + 1)
                && (info.ChecksumPartial || Checksum.VerifyTcp(packet, tcp)))
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
        var result = Forward(ref from, in to, packet, tcp, info);
        if (result == DropReason.None && (flags & TcpFlags.Ack) != 0)
            MaybeOffload(s);
        return result;
    }

    private DropReason Forward(ref Leg from, in Leg to, Span<byte> packet, in TcpPacket tcp, in QueuedPacketInfo info)
    {
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
        int mss = AgreedMss(in to.Options, in from.Options, _options.MaxSegmentSize);
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
        return maxSegmentSize > 0 ? Math.Min(mss, maxSegmentSize) : mss;
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
