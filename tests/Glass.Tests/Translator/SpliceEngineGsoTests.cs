using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>
/// Packets queued with NFQA_CFG_F_GSO: partial checksums and GSO super-packets are relayed for the
/// kernel to finish, with the segment size the session allows.
/// </summary>
public sealed class SpliceEngineGsoTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001, SrcB = 50002;
    private const uint IsnA = 0x1000_0000, IsnB = 0x7000_0000;

    private static readonly QueuedPacketInfo PartialInfo = new() { ChecksumPartial = true };
    private static readonly QueuedPacketInfo GsoInfo = new() { ChecksumPartial = true, Gso = true };

    // Timestamps on every segment, as Linux sends them: 12 bytes of TCP options.
    private static readonly byte[] TimestampOptions = [1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0];

    private readonly FakeKernel _kernel = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineGsoTests()
    {
        _engine = new SpliceEngine(_kernel, new FakeClock(), new SpliceOptions());
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        // A offers MSS 1460, B 1400: both are offered 1400.
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7)));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9))));
        // A is answered; B once A's first segment proves it (then B's SYN-ACK is sent 2nd, that segment 3rd).
        Assert.Single(_kernel.Sent);
        Assert.True(_kernel.Offloads[0].IsNone); // SYN-ACKs are built whole
    }

    private static byte[] FromA(int payload, TcpFlags flags = TcpFlags.Ack, uint seq = IsnA + 1) =>
        Tcp(PeerA, SrcA, Router, PortA, seq, IsnB + 1, flags, 501, TimestampOptions, Payload(payload));

    private static byte[] FromB(int payload, TcpFlags flags = TcpFlags.Ack) =>
        Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, flags, 300, TimestampOptions, Payload(payload));

    private static byte[] Payload(int n)
    {
        var p = new byte[n];
        new Random(n).NextBytes(p);
        return p;
    }

    [Fact]
    public void APartialChecksumSegmentLeavesPartialWithTheNewAddressesInItsPseudoHeader()
    {
        var data = Partial(FromA(1000, TcpFlags.Ack | TcpFlags.Psh));

        Assert.Equal(DropReason.None, _engine.Process(data, PartialInfo));

        Assert.True(_kernel.Offloads[1].IsNone);
        Assert.Equal(new SendOffload(ChecksumPartial: true, SegmentSize: 0), _kernel.Offloads[2]);
        var sent = _kernel.Parse(2); // checks the partial sum, then the finished checksum
        Assert.Equal((Router, PortB, PeerB, SrcB), (sent.SourceAddress, sent.SourcePort, sent.DestinationAddress, sent.DestinationPort));
        Assert.Equal(PeerB, _kernel.Sent[2].Destination);
        Assert.Equal(1000, _engine.GetSessions()[0].BytesFromA);
    }

    [Fact]
    public void ASuperPacketLeavesWholeCutAtTheAgreedMssLessItsOptions()
    {
        var big = Partial(FromA(30_000));

        Assert.Equal(DropReason.None, _engine.Process(big, GsoInfo));

        // 1400, the MSS both sides were offered, less 12 bytes of timestamps.
        Assert.Equal(new SendOffload(true, 1388), _kernel.Offloads[2]);
        var sent = _kernel.Parse(2);
        Assert.Equal(20 + 32 + 30_000, sent.TotalLength);
        Assert.Equal(big.AsSpan(52).ToArray(), _kernel.Sent[2].Packet.AsSpan(52).ToArray());

        // The other way as well: the same agreed MSS.
        Assert.Equal(DropReason.None, _engine.Process(Partial(FromB(20_000)), GsoInfo));
        Assert.Equal(new SendOffload(true, 1388), _kernel.Offloads[3]);
        _kernel.Parse(3);
    }

    [Fact]
    public void TheRoutersOwnLinkLimitAndRelayedPathMtusShrinkTheSegments()
    {
        var clamped = new FakeKernel();
        var engine = new SpliceEngine(clamped, new FakeClock(), new SpliceOptions { MaxSegmentSize = 1360 });
        engine.Link(PeerA, PortA, PeerB, PortB);
        engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7)));
        engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9)));
        engine.Process(Partial(FromA(30_000)), GsoInfo);
        Assert.Equal(1360 - 12, clamped.Offloads[^1].SegmentSize);

        // A hop on B's leg takes 1280 bytes: what goes to B from now on is cut to fit, and A is told.
        var relayed = Tcp(Router, PortB, PeerB, SrcB, IsnA + 1, IsnB + 1, TcpFlags.Ack, 500, null, new byte[100]);
        Assert.Equal(DropReason.None, engine.Process(SpliceEngineTests.TooBig(Ipv4.Parse("198.51.100.254"), Router, relayed, 1280)));
        Assert.Equal(PeerA, clamped.Sent[^1].Destination);
        engine.Process(Partial(FromA(30_000, seq: IsnA + 30_001)), GsoInfo);
        Assert.Equal(1280 - 40 - 12, clamped.Offloads[^1].SegmentSize);
        // A larger MTU later never raises it again; A's own leg is untouched.
        var later = Tcp(Router, PortB, PeerB, SrcB, IsnA + 30_001, IsnB + 1, TcpFlags.Ack, 500, null, new byte[100]);
        engine.Process(SpliceEngineTests.TooBig(Ipv4.Parse("198.51.100.254"), Router, later, 1400));
        engine.Process(Partial(FromA(30_000, seq: IsnA + 60_001)), GsoInfo);
        Assert.Equal(1280 - 40 - 12, clamped.Offloads[^1].SegmentSize);
        engine.Process(Partial(FromB(30_000)), GsoInfo);
        Assert.Equal(1360 - 12, clamped.Offloads[^1].SegmentSize);
    }

    [Fact]
    public void ASuperPacketWithAFullChecksumLeavesAsAPartialOne()
    {
        // GRO merged it on a real NIC: verified, CHECKSUM_UNNECESSARY, its field the first segment's.
        var big = FromA(30_000);
        big[20 + 16] ^= 0x5A;

        Assert.Equal(DropReason.None, _engine.Process(big, new QueuedPacketInfo { Gso = true }));

        Assert.Equal(new SendOffload(true, 1388), _kernel.Offloads[2]);
        _kernel.Parse(2);
    }

    [Fact]
    public void APartialSynFinOrResetIsTrustedWhileAFullOneIsStillVerified()
    {
        var fin = Partial(FromA(0, TcpFlags.Ack | TcpFlags.Fin));
        // Read as a finished checksum, the pseudo-header sum is wrong: the check refuses it.
        Assert.Equal(DropReason.BadChecksum, _engine.Process((byte[])fin.Clone()));
        Assert.Equal(DropReason.None, _engine.Process(fin, PartialInfo));
        _kernel.Parse(2);

        // B's partial ACK of that FIN counts: the session moves on toward its release.
        Assert.Equal(DropReason.None, _engine.Process(Partial(FromB(0, TcpFlags.Ack | TcpFlags.Fin)), PartialInfo));
        var ack = Tcp(PeerB, SrcB, Router, PortB, IsnB + 2, IsnA + 2, TcpFlags.Ack, 300, TimestampOptions);
        Assert.Equal(DropReason.None, _engine.Process(Partial(ack), PartialInfo));
        var finalAck = Tcp(PeerA, SrcA, Router, PortA, IsnA + 2, IsnB + 2, TcpFlags.Ack, 501, TimestampOptions);
        Assert.Equal(DropReason.None, _engine.Process(Partial(finalAck), PartialInfo));
        Assert.Equal(SessionState.TimeWait, _engine.GetSessions()[0].State);
    }

    [Fact]
    public void ATruncatedPacketIsDroppedAndCountedNotParsed()
    {
        var data = FromA(1000);
        Assert.Equal(DropReason.Truncated, _engine.Process(data.AsSpan(0, 500), new QueuedPacketInfo { Truncated = true }));
        Assert.Single(_kernel.Sent);
        Assert.Equal(1, _engine.GetCounters().Drops["Truncated"]);
        Assert.Equal(0, _engine.GetCounters().Drops["Malformed"]);
    }

    [Fact]
    public void ASenderThatCannotLetTheKernelFinishPacketsRefusesThemAndTheDropIsCounted()
    {
        _kernel.RefuseOffload = true;
        Assert.Equal(DropReason.SendFailed, _engine.Process(Partial(FromA(30_000)), GsoInfo));
        Assert.Equal(DropReason.None, _engine.Process(FromA(100)));
        Assert.Equal(1, _engine.GetCounters().Drops["SendFailed"]);
    }

    [Fact]
    public void GarbageWithAnyCombinationOfKernelFlagsNeverThrowsAndWhatLeavesIsWhole()
    {
        var rng = new Random(11);
        var good = Partial(FromA(3000));
        for (var i = 0; i < 20000; i++)
        {
            byte[] p;
            if (i % 2 == 0)
            {
                p = new byte[rng.Next(0, 120)];
                rng.NextBytes(p);
            }
            else
            {
                p = (byte[])good.Clone();
                for (var k = rng.Next(1, 6); k > 0; k--)
                    p[rng.Next(p.Length)] = (byte)rng.Next(256);
            }
            var info = new QueuedPacketInfo { ChecksumPartial = rng.Next(2) == 0, Gso = rng.Next(2) == 0, Truncated = rng.Next(8) == 0 };
            var before = _kernel.Sent.Count;
            var result = _engine.Process(p, info);
            if (_kernel.Sent.Count > before)
            {
                Assert.Equal(DropReason.None, result);
                var offload = _kernel.Offloads[^1];
                Assert.Equal(info.ChecksumPartial || info.Gso, offload.ChecksumPartial);
                Assert.Equal(info.Gso, offload.SegmentSize > 0);
                Assert.False(info.Truncated);
            }
        }
        // A mutated in-window RST with a partial checksum is believed (no checksum to check; the
        // window check still holds), so the session may have ended; garbage never adds one.
        Assert.True(_engine.GetSessions().Count <= 1);
        Assert.True(_engine.GetCounters().Drops["Truncated"] > 0);
    }
}
