using Glass.Packets;

namespace Glass.Translator;

/// <summary>
/// A translator that stops (without keeping its sessions) ends them all: its rules and kernel
/// entries go first, so every later segment of a relayed flow meets the router's own TCP stack,
/// which has no socket for it and answers with a reset at exactly the sequence number the
/// segment acknowledges. A peer with nothing to send (a receiver, an idle ssh, a sender held by
/// a zero window) would never send such a segment and would hang. So each peer is made to speak.
/// </summary>
public sealed partial class SpliceEngine
{
    /// <summary>
    /// Call once the rules and offloaded entries are gone. Each proven side gets a SYN-ACK: in a
    /// synchronized state its TCP answers any SYN with a challenge ACK (RFC 5961 4.2), whatever the
    /// numbers, and a NAT in front of it lets the SYN-ACK through (Linux conntrack ignores one on an
    /// established flow but forwards it); the router's reset to that ACK then ends the connection.
    /// Sides still waiting on their SYN are refused as an ended link's are. Returns the peers told.
    /// </summary>
    public int TellPeersStopped()
    {
        lock (_gate)
        {
            var told = 0;
            foreach (var s in _sessions)
            {
                RefuseWaitingSyns(s);
                if (s.A.Proven && Provoke(in s.A, in s.B))
                    told++;
                if (s.B.Proven && Provoke(in s.B, in s.A))
                    told++;
            }
            return told;
        }
    }

    private static readonly SynAckOptions NoOptions = new() { WindowScale = -1 };

    private bool Provoke(in Leg to, in Leg from)
    {
        // No options: without a timestamp there is nothing for PAWS to judge, and no window to scale.
        var n = TcpSegmentBuilder.WriteSynAck(_scratch, to.Router, to.RouterPort, to.Peer, to.PeerPort,
            from.SndNxt, to.SndNxt, 0, ece: false, NoOptions);
        return SendBuilt(n, to.Peer);
    }
}
