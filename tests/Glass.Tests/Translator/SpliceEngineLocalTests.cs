using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>
/// Peers on the router's own host: the original design's test (both over 127.0.0.1, linked by the
/// LINK datagram) and a local peer spliced with one behind a NAT. Their segments come in on lo.
/// </summary>
public sealed class SpliceEngineLocalTests
{
    private static readonly uint Loopback = Ipv4.Parse("127.0.0.1");
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint Remote = Ipv4.Parse("203.0.113.2");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001, SrcB = 50002;
    private const uint IsnA = 0x1000_0000, IsnB = 0x2000_0000;
    private static readonly QueuedPacketInfo FromLo = new() { Local = true };

    private readonly FakeKernel _kernel = new();
    private readonly FakeOffloader _offloader = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineLocalTests()
    {
        _engine = new SpliceEngine(_kernel, new FakeClock()) { Offloader = _offloader };
    }

    /// <summary>Links A and B, feeds their SYNs (local peers offer lo's MSS) and the ACKs that prove them (SYN-ACKs to A, then B).</summary>
    private void Splice(uint peerA, uint routerA, QueuedPacketInfo infoA, uint peerB, uint routerB, QueuedPacketInfo infoB)
    {
        Assert.True(_engine.Link(peerA, PortA, peerB, PortB).Success);
        var mssA = (ushort)(infoA.Local ? 65495 : 1460);
        var mssB = (ushort)(infoB.Local ? 65495 : 1460);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(peerA, SrcA, routerA, PortA, IsnA, 0, TcpFlags.Syn, 65495, LinuxSynOptions(mssA, 1, 7)), infoA));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(peerB, SrcB, routerB, PortB, IsnB, 0, TcpFlags.Syn, 65495, LinuxSynOptions(mssB, 2, 7)), infoB));
        Assert.Single(_kernel.Sent); // A's SYN-ACK; B's follows A's proof
        Assert.Equal(DropReason.None, _engine.Process(Tcp(peerA, SrcA, routerA, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack), infoA));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(peerB, SrcB, routerB, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack), infoB));
    }

    [Fact]
    public void TwoLoopbackPeersAreSplicedOverLoopbackAndKeptInUserspace()
    {
        Splice(Loopback, Loopback, FromLo, Loopback, Loopback, FromLo);

        // Each SYN-ACK goes back to 127.0.0.1 from the router port that peer dialled.
        var toA = _kernel.Parse(0);
        Assert.Equal((Loopback, PortA, Loopback, SrcA), (toA.SourceAddress, toA.SourcePort, toA.DestinationAddress, toA.DestinationPort));
        var toB = _kernel.Parse(1);
        Assert.Equal((Loopback, PortB, Loopback, SrcB), (toB.SourceAddress, toB.SourcePort, toB.DestinationAddress, toB.DestinationPort));

        // "test" each way crosses with the other's router port as its source.
        var test = "test"u8.ToArray();
        Assert.Equal(DropReason.None, _engine.Process(Tcp(Loopback, SrcA, Loopback, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: test), FromLo));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(Loopback, SrcB, Loopback, PortB, IsnB + 1, IsnA + 5, TcpFlags.Ack | TcpFlags.Psh, payload: test), FromLo));
        var atB = _kernel.Parse(_kernel.Sent.Count - 2);
        Assert.Equal((Loopback, PortB, Loopback, SrcB, 4), (atB.SourceAddress, atB.SourcePort, atB.DestinationAddress, atB.DestinationPort, atB.PayloadLength));
        var atA = _kernel.Parse(_kernel.Sent.Count - 1);
        Assert.Equal((Loopback, PortA, Loopback, SrcA, 4), (atA.SourceAddress, atA.SourcePort, atA.DestinationAddress, atA.DestinationPort, atA.PayloadLength));

        // Their segments are untracked: no conntrack entry could carry them.
        Assert.Empty(_offloader.Offloaded);
        var c = _engine.GetCounters();
        Assert.Equal((1L, 0, 0L), (c.SessionsKeptLocal, c.SessionsOffloaded, c.OffloadFailures));
        Assert.False(Assert.Single(_engine.GetSessions()).Offloaded);
    }

    [Fact]
    public void ALocalPeerWithOneBehindANatStaysInUserspaceAndTheRemoteSeesOnlyTheAddressItDialled()
    {
        // B binds on the router's host over loopback; A dials the router's public address.
        Splice(Remote, Router, default, Loopback, Loopback, FromLo);
        Assert.Empty(_offloader.Offloaded);
        Assert.Equal(1, _engine.GetCounters().SessionsKeptLocal);

        Assert.Equal(DropReason.None, _engine.Process(Tcp(Loopback, SrcB, Loopback, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack | TcpFlags.Psh, payload: new byte[100]), FromLo));
        var atA = _kernel.Parse(_kernel.Sent.Count - 1);
        Assert.Equal((Router, PortA, Remote, SrcA), (atA.SourceAddress, atA.SourcePort, atA.DestinationAddress, atA.DestinationPort));
        foreach (var (packet, _) in _kernel.Sent.Where(s => s.Destination == Remote))
        {
            Assert.True(TcpPacket.TryParse(packet, out var t));
            Assert.Equal(Router, t.SourceAddress); // never 127.x
        }
    }

    [Fact]
    public void TheSameSessionFromOutsideIsStillOffloaded()
    {
        Splice(Remote, Router, default, Ipv4.Parse("198.51.100.7"), Router, default);
        Assert.Single(_offloader.Offloaded);
        Assert.Equal(0, _engine.GetCounters().SessionsKeptLocal);
    }

    [Fact]
    public void TheOfferedMssFitsTheQueueWhole()
    {
        // lo's MTU makes both peers offer 65495: a full segment (65535 bytes) would be cut by the
        // queue's 65531-byte copy and dropped every time it is sent.
        Splice(Loopback, Loopback, FromLo, Loopback, Loopback, FromLo);
        foreach (var i in new[] { 0, 1 })
        {
            var synAck = _kernel.Parse(i);
            Assert.True(TcpSynOptions.TryParse(_kernel.Sent[i].Packet.AsSpan(synAck.OptionsOffset, synAck.OptionsLength), out var o));
            Assert.Equal(SpliceEngine.MaxQueuedMss, o.Mss);
            Assert.True(o.Mss + Ipv4Layout.MinHeaderLength + TcpLayout.MaxHeaderLength <= 65531);
        }
    }
}
