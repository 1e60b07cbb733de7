using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Glass.Client;

namespace Glass.Tests.Client;

/// <summary>
/// The pump over real loopback sockets (Linux, as the project), with every direction spliced from
/// the start, never, and after its first MiB (the default): bytes intact both ways, half-close, resets.
/// </summary>
public sealed class PumpTests
{
    public enum Kind { Splice, Copy, Adaptive }

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
}
