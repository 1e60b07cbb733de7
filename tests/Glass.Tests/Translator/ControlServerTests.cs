using System.Diagnostics;
using System.Net.Sockets;
using Glass.Packets;
using Glass.Translator;

namespace Glass.Tests.Translator;

/// <summary>The translator's control socket, over real Unix sockets in a temporary folder.</summary>
public sealed class ControlServerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("glass-control-").FullName;
    private readonly SpliceEngine _engine = new(new FakeKernel(), new FakeClock());
    private readonly ControlServer _server;

    public ControlServerTests()
    {
        _server = new ControlServer(_engine, Path.Combine(_dir, "t.sock"));
        _server.Start();
    }

    public void Dispose()
    {
        _server.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }

    private static byte[] LegacyLink(string a, ushort pa, string b, ushort pb)
    {
        var d = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(d, Ipv4.Parse(a));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(4), pa);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(8), Ipv4.Parse(b));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(12), pb);
        return d;
    }

    [Fact]
    public void TheOriginalDesignsLinkDatagramLinksAPair()
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        s.SendTo(LegacyLink("203.0.113.2", 60000, "203.0.113.3", 60001), new UnixDomainSocketEndPoint(_server.DatagramPath));
        WaitFor(() => _engine.GetSessions().Count == 1, "the datagram's link");
        var session = _engine.GetSessions()[0];
        Assert.Equal(("203.0.113.2", (ushort)60000, "203.0.113.3", (ushort)60001), (session.PeerA, session.RouterPortA, session.PeerB, session.RouterPortB));
        Assert.Equal(1, _server.DatagramLinks);
    }

    [Fact]
    public void MalformedDatagramsAreCountedAndLinkNothing()
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        var ep = new UnixDomainSocketEndPoint(_server.DatagramPath);
        s.SendTo(new byte[15], ep);
        var padded = LegacyLink("203.0.113.2", 60000, "203.0.113.3", 60001);
        padded[7] = 1; // the two padding bytes must be zero
        s.SendTo(padded, ep);
        s.SendTo(new byte[17], ep);
        WaitFor(() => _server.BadDatagrams == 3, "three bad datagrams counted");
        Assert.Empty(_engine.GetSessions());
    }

    [Fact]
    public async Task AControllerInTheSameProcessGetsTheSocketsAnswersWithoutIt()
    {
        using var direct = new TranslatorClient(_server.Path);
        using var socket = new TranslatorClient(_server.Path, inProcess: false);
        var link = await direct.LinkAsync(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.3"), 60001);
        Assert.True(link.Success);
        // The same engine behind both: the socket sees the direct link, and refuses its port alike.
        var again = await socket.LinkAsync(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.9"), 60009);
        Assert.Equal("port-in-use", again.ErrorCode);
        Assert.Equal(await socket.QueryAsync("STATUS"), await direct.QueryAsync("STATUS"));
        // Once the translator is gone, the direct path goes too, and the error names the socket.
        _server.Dispose();
        var e = await Assert.ThrowsAsync<GlassException>(() => direct.QueryAsync("STATUS"));
        Assert.Equal(GlassErrors.TranslatorUnavailable, e.ErrorId);
        Assert.Contains(_server.Path, e.Message);
    }

    [Fact]
    public async Task TheLineProtocolLinksReportsAndUnlinks()
    {
        using var client = new TranslatorClient(_server.Path, inProcess: false);
        var link = await client.LinkAsync(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.3"), 60001);
        Assert.True(link.Success);
        var again = await client.LinkAsync(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.9"), 60009);
        Assert.Equal("port-in-use", again.ErrorCode);
        Assert.Contains("\"SessionsPending\":1", await client.QueryAsync("STATUS"));
        Assert.StartsWith("ERR bad-request", await client.RequestAsync("LINK 1.2.3.4"));
        Assert.Equal("OK", await client.RequestAsync("UNLINK 203.0.113.3 60001"));
        Assert.Equal("[]", await client.QueryAsync("SESSIONS"));
    }

    [Fact]
    public async Task WatchersHearOfReleasedLinks()
    {
        using var client = new TranslatorClient(_server.Path, inProcess: false);
        var heard = new List<LinkRelease>();
        using var cts = new CancellationTokenSource();
        var watch = client.WatchAsync(r => { lock (heard) heard.Add(r); }, null, cts.Token);
        Assert.True(_engine.Link(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.3"), 60001).Success);
        // The watcher may connect after the first unlink; keep unlinking fresh links until one is heard.
        WaitFor(() =>
        {
            _engine.Unlink(Ipv4.Parse("203.0.113.2"), 60000);
            _engine.Link(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.3"), 60001);
            lock (heard)
                return heard.Count > 0;
        }, "a RELEASED event");
        lock (heard)
            Assert.Equal(("unlinked", (ushort)60000, (ushort)60001), (heard[0].Reason, heard[0].RouterPortA, heard[0].RouterPortB));
        cts.Cancel();
        await watch.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task AWatcherInTheSameProcessHearsTheEventsWithoutTheSocketAndTheStop()
    {
        using var client = new TranslatorClient(_server.Path);
        // Without its socket file nothing could connect: only the in-process path can watch.
        File.Delete(_server.Path);
        var heard = new List<LinkRelease>();
        var watching = 0;
        var lost = 0;
        using var cts = new CancellationTokenSource();
        var watch = client.WatchAsync(r => { lock (heard) heard.Add(r); }, null, cts.Token,
            onWatching: () => { Interlocked.Increment(ref watching); return Task.CompletedTask; },
            onArrived: r => { lock (heard) heard.Add(r); }, onLost: () => Interlocked.Increment(ref lost));
        WaitFor(() => Volatile.Read(ref watching) == 1, "the watch to start");
        Assert.True(_engine.Link(Ipv4.Parse("203.0.113.2"), 60000, Ipv4.Parse("203.0.113.3"), 60001).Success);
        Assert.True(_engine.Unlink(Ipv4.Parse("203.0.113.2"), 60000));
        WaitFor(() => { lock (heard) return heard.Count > 0; }, "a RELEASED event");
        lock (heard)
            Assert.Equal(("unlinked", (ushort)60000, (ushort)60001), (heard[0].Reason, heard[0].RouterPortA, heard[0].RouterPortB));
        // A stopped translator ends the watch as a closed socket would; it then looks for a new one.
        _server.Dispose();
        WaitFor(() => Volatile.Read(ref lost) == 1, "the watch to be lost");
        cts.Cancel();
        await watch.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void ASecondTranslatorOnTheSameSocketIsRefused()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new ControlServer(_engine, _server.Path));
        Assert.Contains("already listening", e.Message);
    }

    [Fact]
    public async Task AWatcherThatStopsReadingIsDroppedOnceItFallsTooFarBehindAndOthersKeepTheirEvents()
    {
        var stuck = _server.Subscribe(out _);
        var live = _server.Subscribe(out var unsubscribeLive);
        var a = Ipv4.Parse("203.0.113.2");
        var b = Ipv4.Parse("198.51.100.7");
        var liveSeen = 0;
        // One RELEASED per link ended; the live watcher reads as they come, the stuck one never.
        for (var i = 0; i <= ControlServer.WatcherBacklog; i++)
        {
            Assert.True(_engine.Link(a, 40000, b, 40001).Success);
            Assert.True(_engine.Unlink(a, 40000));
            while (live.TryRead(out _))
                liveSeen++;
        }
        Assert.Equal(ControlServer.WatcherBacklog + 1, liveSeen);
        unsubscribeLive();

        // The stuck one keeps what it had room for, then learns it was dropped, and why.
        var kept = 0;
        var e = await Assert.ThrowsAsync<IOException>(async () =>
        {
            await foreach (var _ in stuck.ReadAllAsync())
                kept++;
        });
        Assert.Equal(ControlServer.WatcherBacklog, kept);
        Assert.Contains("fell 65536 events behind", e.Message);
    }

    [Fact]
    public async Task ALinkASlowTranslatorDoesNotAnswerInTimeIsNotSentTwice()
    {
        // A translator that takes requests but answers none in time.
        var path = Path.Combine(_dir, "slow.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var held = new List<Socket>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Socket c;
                try
                {
                    c = await listener.AcceptAsync();
                }
                catch (Exception)
                {
                    return;
                }
                held.Add(c);
                _ = Task.Run(async () =>
                {
                    var conn = new Glass.Protocol.LineConnection(c, 4096);
                    try
                    {
                        while (await conn.ReadLineAsync(default) is { } line)
                            lines.Enqueue(line);
                    }
                    catch (Exception)
                    {
                    }
                });
            }
        });
        using var client = new TranslatorClient(path, inProcess: false, requestTimeout: TimeSpan.FromMilliseconds(300));

        var e = await Assert.ThrowsAsync<Glass.GlassException>(() => client.LinkAsync(Ipv4.Parse("203.0.113.2"), 40000, Ipv4.Parse("198.51.100.7"), 40001));
        Assert.Equal(Glass.GlassErrors.TranslatorUnavailable, e.ErrorId);
        Assert.Contains("did not answer", e.Message);
        // It may have been carried out: sending it again could make the link twice.
        WaitFor(() => !lines.IsEmpty, "the request to arrive");
        Assert.Equal(["LINK 203.0.113.2 40000 198.51.100.7 40001"], lines.ToArray());
        listener.Dispose();
        foreach (var c in held.ToArray())
            c.Dispose();
    }
}
