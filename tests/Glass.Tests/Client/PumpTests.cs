using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Glass.Client;

namespace Glass.Tests.Client;

/// <summary>
/// The pump over real loopback sockets (Linux, as the project): the event loop's pump with every
/// direction spliced from the start, never, and after its first MiB (the default), and .NET's
/// portable copy: bytes intact both ways, half-close, resets, peers that cannot keep up.
/// </summary>
public sealed class PumpTests
{
    public enum Kind { Splice, Copy, Adaptive, Loop }

    /// <summary>Two loopback connections, each as (outer end, the end a pump gets).</summary>
    private static (Socket Left, Socket LeftInner, Socket Right, Socket RightInner) TwoConnections()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var (left, leftInner) = Pair(listener);
        var (right, rightInner) = Pair(listener);
        return (left, leftInner, right, rightInner);
    }

    // Connected asynchronously, as the client's sockets are: .NET then keeps them non-blocking.
    private static (Socket Outer, Socket Inner) Pair(Socket listener)
    {
        var outer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        outer.ConnectAsync(listener.LocalEndPoint!).Wait();
        return (outer, accept.Result);
    }

    private static Task<(long, long)> Pump(Kind kind, Socket a, Socket b, CancellationToken ct) => kind switch
    {
        Kind.Splice => StreamPump.RunAsync(a, b, 0, ct),
        Kind.Copy => StreamPump.CopyBothAsync(a, b, ct),
        Kind.Loop => StreamPump.RunAsync(a, b, -1, ct),
        _ => StreamPump.RunAsync(a, b, ct),
    };

    private static async Task<byte[]> SendAndHash(Socket s, int bytes, int seed)
    {
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        for (var sent = 0; sent < bytes;)
            sent += await s.SendAsync(data.AsMemory(sent, Math.Min(65536, bytes - sent)), SocketFlags.None);
        s.Shutdown(SocketShutdown.Send);
        return SHA256.HashData(data);
    }

    private static async Task<(long, byte[])> ReceiveAndHash(Socket s)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[65536];
        long total = 0;
        int n;
        while ((n = await s.ReceiveAsync(buf, SocketFlags.None)) > 0)
        {
            hash.AppendData(buf, 0, n);
            total += n;
        }
        return (total, hash.GetHashAndReset());
    }

    [Theory]
    [InlineData(Kind.Splice)]
    [InlineData(Kind.Copy)]
    [InlineData(Kind.Adaptive)]
    [InlineData(Kind.Loop)]
    public async Task BytesCrossIntactBothWaysAndEofFollows(Kind kind)
    {
        var (left, leftInner, right, rightInner) = TwoConnections();
        using (left)
        using (right)
        {
            var pump = Pump(kind, leftInner, rightInner, CancellationToken.None);
            var toRight = SendAndHash(left, 8 << 20, 1);
            var atRight = ReceiveAndHash(right);
            // Right answers only after left's EOF: the half-close must have crossed.
            var (got, hash) = await atRight;
            Assert.Equal(8 << 20, got);
            Assert.Equal(await toRight, hash);
            var toLeft = SendAndHash(right, 3 << 20, 2);
            var (back, backHash) = await ReceiveAndHash(left);
            Assert.Equal(3 << 20, back);
            Assert.Equal(await toLeft, backHash);
            var (ab, ba) = await pump.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal((8L << 20, 3L << 20), (ab, ba));
        }
    }

    [Theory]
    [InlineData(Kind.Splice)]
    [InlineData(Kind.Copy)]
    [InlineData(Kind.Adaptive)]
    [InlineData(Kind.Loop)]
    public async Task AResetOnOneSideResetsTheOther(Kind kind)
    {
        var (left, leftInner, right, rightInner) = TwoConnections();
        using (right)
        {
            var pump = Pump(kind, leftInner, rightInner, CancellationToken.None);
            await left.SendAsync(new byte[1000], SocketFlags.None);
            left.LingerState = new LingerOption(true, 0);
            left.Close();
            var buf = new byte[4096];
            var e = await Assert.ThrowsAsync<SocketException>(async () =>
            {
                while (await right.ReceiveAsync(buf, SocketFlags.None) > 0)
                {
                }
                throw new SocketException((int)SocketError.Success); // EOF instead of a reset
            });
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
            await pump.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task CancellingTheSplicePumpEndsItPromptly()
    {
        var (left, leftInner, right, rightInner) = TwoConnections();
        using (left)
        using (right)
        {
            using var cts = new CancellationTokenSource();
            var pump = StreamPump.RunAsync(leftInner, rightInner, 0, cts.Token);
            cts.Cancel();
            // Cancelling ends both directions without any traffic to wake them.
            await pump.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(pump.IsCompletedSuccessfully);
        }
    }

    [Theory]
    [InlineData(Kind.Loop)]
    [InlineData(Kind.Splice)]
    public async Task CancellingInTheMiddleOfATransferResetsBothSides(Kind kind)
    {
        var (left, leftInner, right, rightInner) = TwoConnections();
        using (left)
        using (right)
        {
            using var cts = new CancellationTokenSource();
            var pump = Pump(kind, leftInner, rightInner, cts.Token);
            var sending = SendAndHash(left, 64 << 20, 5);
            // Cancelled once bytes are flowing (the first MiB has crossed), not before.
            var buf = new byte[65536];
            for (long got = 0; got < 1 << 20;)
                got += await right.ReceiveAsync(buf, SocketFlags.None);
            cts.Cancel();
            await pump.WaitAsync(TimeSpan.FromSeconds(10));
            var atRight = await Assert.ThrowsAsync<SocketException>(async () =>
            {
                while (await right.ReceiveAsync(buf, SocketFlags.None) > 0)
                {
                }
            });
            Assert.Equal(SocketError.ConnectionReset, atRight.SocketErrorCode);
            await Assert.ThrowsAsync<SocketException>(() => sending);
        }
    }

    [Theory]
    [InlineData(Kind.Loop)]
    [InlineData(Kind.Splice)]
    public async Task AReceiverThatDoesNotReadHoldsTheSenderBackAndLosesNothing(Kind kind)
    {
        var (left, leftInner, right, rightInner) = TwoConnections();
        using (left)
        using (right)
        {
            var pump = Pump(kind, leftInner, rightInner, CancellationToken.None);
            // Far more than the socket buffers hold: the pump must keep what the right side cannot
            // take yet and resume when it can, not drop it or spin.
            var toRight = SendAndHash(left, 48 << 20, 3);
            await Task.WhenAny(toRight, Task.Delay(300));
            Assert.False(toRight.IsCompleted, "the sender finished although nobody read");
            var (got, hash) = await ReceiveAndHash(right);
            Assert.Equal(48 << 20, got);
            Assert.Equal(await toRight, hash);
            right.Shutdown(SocketShutdown.Send);
            var (back, _) = await ReceiveAndHash(left);
            Assert.Equal(0, back);
            Assert.Equal((48L << 20, 0L), await pump.WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    [Fact]
    public async Task SmallMessagesGoBothWaysOneAtATime()
    {
        var (left, leftInner, right, rightInner) = TwoConnections();
        using (left)
        using (right)
        {
            var pump = StreamPump.RunAsync(leftInner, rightInner, CancellationToken.None);
            var buf = new byte[64];
            var rng = new Random(4);
            for (var i = 0; i < 500; i++)
            {
                // An echo's exchange: nothing more is sent until the answer came back.
                var message = new byte[1 + rng.Next(64)];
                rng.NextBytes(message);
                await left.SendAsync(message, SocketFlags.None);
                var at = await ReceiveExactly(right, message.Length);
                Assert.Equal(message, at);
                await right.SendAsync(at, SocketFlags.None);
                Assert.Equal(message, await ReceiveExactly(left, message.Length));
            }
            left.Shutdown(SocketShutdown.Send);
            right.Shutdown(SocketShutdown.Send);
            var (ab, ba) = await pump.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(ab, ba);
            Assert.True(ab >= 500);
        }
    }

    [Fact]
    public async Task ManyConnectionsAtOnceEachGetTheirOwnBytes()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(512);
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        const int count = 200;
        var sockets = new List<Socket>();
        try
        {
            var runs = new List<Task>();
            for (var i = 0; i < count; i++)
            {
                var accept = listener.AcceptAsync();
                var left = await TcpSockets.ConnectAsync(endpoint, CancellationToken.None);
                var leftInner = await accept;
                accept = listener.AcceptAsync();
                var rightInner = await TcpSockets.ConnectAsync(endpoint, CancellationToken.None);
                var right = await accept;
                sockets.AddRange([left, leftInner, right, rightInner]);
                var pump = StreamPump.RunAsync(leftInner, rightInner, CancellationToken.None);
                var seed = i;
                runs.Add(Task.Run(async () =>
                {
                    var size = 1000 + seed * 997;
                    var sent = SendAndHash(left, size, seed);
                    var (got, hash) = await ReceiveAndHash(right);
                    Assert.Equal(size, got);
                    Assert.Equal(await sent, hash);
                    right.Shutdown(SocketShutdown.Send);
                    await pump;
                }));
            }
            await Task.WhenAll(runs).WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            foreach (var s in sockets)
                s.Dispose();
        }
    }

    [Fact]
    public async Task TheLoopsDialNamesARefusalAndHonoursCancellation()
    {
        // A port nobody listens on: bound, never listening.
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var closed = (IPEndPoint)holder.LocalEndPoint!;
        var refused = await Assert.ThrowsAsync<SocketException>(() => TcpSockets.ConnectAsync(closed, CancellationToken.None));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TcpSockets.ConnectAsync(closed, cts.Token));

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var s = await TcpSockets.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, CancellationToken.None);
        Assert.True(s.Connected);
        Assert.True(s.NoDelay);
        Assert.Equal(listener.LocalEndPoint, s.RemoteEndPoint);
    }

    private static async Task<byte[]> ReceiveExactly(Socket s, int count)
    {
        var buf = new byte[count];
        for (var got = 0; got < count;)
        {
            var n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None);
            Assert.True(n > 0, "the connection ended early");
            got += n;
        }
        return buf;
    }
}
