using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>
/// The order of the handshake: A (the connector) proves itself first; B (the binder) is answered
/// with A's proven ISN only then, unless B holds several SYNs and A one.
/// </summary>
public sealed class SpliceEngineHandshakeTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001, SrcB = 50002, OtherB = 50666;
    private const uint IsnA = 0x1000_0000, IsnB = 0x7000_0000, OtherIsn = 0x5555_0000;

    private readonly FakeKernel _kernel = new();
    private readonly FakeClock _clock = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineHandshakeTests()
    {
        _engine = new SpliceEngine(_kernel, _clock, new SpliceOptions());
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
    }

    private static byte[] SynA() => Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7));
    private static byte[] SynB(ushort src = SrcB, uint isn = IsnB) => Tcp(PeerB, src, Router, PortB, isn, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9));
    private static byte[] FromA(uint seq, uint ack, TcpFlags flags = TcpFlags.Ack, byte[]? payload = null) =>
        Tcp(PeerA, SrcA, Router, PortA, seq, ack, flags, 64240, null, payload);
    private static byte[] FromB(uint seq, uint ack, ushort src = SrcB) => Tcp(PeerB, src, Router, PortB, seq, ack, TcpFlags.Ack);

    private (uint Destination, ushort Port, TcpFlags Flags, uint Seq, uint Ack) Sent(int i)
    {
        var t = _kernel.Parse(i);
        return (_kernel.Sent[i].Destination, t.DestinationPort, t.Flags, t.Sequence, t.Acknowledgment);
    }

    private SessionState State => Assert.Single(_engine.GetSessions()).State;

    [Fact]
    public void TheBinderIsAnsweredOnlyOnceTheConnectorProvedItself()
    {
        // B's SYN first (the binder dials as soon as the controller asks it to), then A's.
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Empty(_kernel.Sent);
        Assert.Equal(DropReason.None, _engine.Process(SynA()));
        Assert.Equal((PeerA, SrcA, TcpFlags.Syn | TcpFlags.Ack, IsnB, IsnA + 1), Sent(0));
        Assert.Single(_kernel.Sent);
        Assert.Equal(SessionState.Handshake, State);

        // Nothing from B counts before it was answered: it cannot prove itself yet.
        Assert.Equal(DropReason.HandshakeIncomplete, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Single(_kernel.Sent);

        // A acknowledges its SYN-ACK: B gets its SYN-ACK (A's ISN), then A's ACK crosses.
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal((PeerB, SrcB, TcpFlags.Syn | TcpFlags.Ack, IsnA, IsnB + 1), Sent(1));
        Assert.Equal((PeerB, SrcB, TcpFlags.Ack, IsnA + 1, IsnB + 1), Sent(2));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(2, _engine.GetCounters().SynAcksSent);
    }

    [Fact]
    public void TheConnectorsFirstDataAnswersTheBinderAndCrossesInTheSameStep()
    {
        _engine.Process(SynA());
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        // A speaks first, its ACK lost or merged: its first segment carries 100 bytes.
        var payload = new byte[100];
        new Random(3).NextBytes(payload);
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload)));
        Assert.Equal(3, _kernel.Sent.Count);
        Assert.Equal((PeerB, SrcB, TcpFlags.Syn | TcpFlags.Ack, IsnA, IsnB + 1), Sent(1));
        Assert.Equal((PeerB, SrcB, TcpFlags.Ack | TcpFlags.Psh, IsnA + 1, IsnB + 1), Sent(2));
        Assert.Equal(payload, _kernel.Sent[2].Packet[^100..]);

        // B's acknowledgment of that data proves B.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 101)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(100, _engine.GetSessions()[0].BytesFromA);
    }

    [Fact]
    public void ALostAcknowledgmentFromTheConnectorIsRecoveredWhenTheBinderRetransmitsItsSyn()
    {
        // B retransmits before A's SYN is in: there is nothing to send again.
        _engine.Process(SynB());
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Empty(_kernel.Sent);

        // A is answered; its ACK is lost, and it has nothing to send (the server speaks first).
        _engine.Process(SynA());
        Assert.Single(_kernel.Sent);
        // B's next retransmission sends A's SYN-ACK again; A, established, answers it with an ACK.
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Equal(2, _kernel.Sent.Count);
        Assert.Equal(_kernel.Sent[0].Packet, _kernel.Sent[1].Packet);
        Assert.Equal(1, _engine.GetCounters().ProofRetries);

        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal((PeerB, SrcB, TcpFlags.Syn | TcpFlags.Ack, IsnA, IsnB + 1), Sent(2));
        // From now on B's retransmissions get B's own SYN-ACK again, and A's no more.
        Assert.Equal(DropReason.None, _engine.Process(SynB()));
        Assert.Equal(_kernel.Sent[2].Packet, _kernel.Sent[^1].Packet);
        Assert.Equal(1, _engine.GetCounters().ProofRetries);
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
    }

    [Fact]
    public void TheBindersRetransmittedSynResendsTheSynAckOfEveryCandidateOfTheConnector()
    {
        _engine.Process(SynB());
        _engine.Process(SynA());
        _engine.Process(Tcp(PeerA, 40666, Router, PortA, OtherIsn, 0, TcpFlags.Syn));
        Assert.Equal(2, _kernel.Sent.Count);
        // A's own SYN-ACK and the stranger's both go out again; only A's own can prove itself.
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Equal(4, _kernel.Sent.Count);
        Assert.Equal(new[] { SrcA, (ushort)40666 }, new[] { Sent(2).Port, Sent(3).Port });
        Assert.Equal(2, _engine.GetCounters().ProofRetries);
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal((PeerB, IsnA), (Sent(4).Destination, Sent(4).Seq));
    }

    [Fact]
    public void AContestedBinderWithOneConnectorSynIsAnsweredFirstSoNeitherWaitsForEver()
    {
        // B's side holds two SYNs (its own and another), A's one: B's ISN is not settled, so A
        // cannot be answered; were B's to wait for A's proof, neither would ever be answered.
        _engine.Process(SynB());
        _engine.Process(SynB(OtherB, OtherIsn));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
        Assert.Equal(2, _kernel.Sent.Count);
        Assert.Equal((PeerB, SrcB, TcpFlags.Syn | TcpFlags.Ack, IsnA, IsnB + 1), Sent(0));
        Assert.Equal((PeerB, OtherB, TcpFlags.Syn | TcpFlags.Ack, IsnA, OtherIsn + 1), Sent(1));

        // B's own proves itself: A is answered with its ISN, and B's ACK follows it.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal((PeerA, SrcA, TcpFlags.Syn | TcpFlags.Ack, IsnB, IsnA + 1), Sent(2));
        Assert.Equal((PeerA, SrcA, TcpFlags.Ack, IsnB + 1, IsnA + 1), Sent(3));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(DropReason.NoSession, _engine.Process(FromB(OtherIsn + 1, IsnA + 1, OtherB)));
    }
}
