using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Glass.Client;

namespace Glass.Tests.Client;

/// <summary>
/// Accepting on the client's own event loop (as a forwarder does): every waiting and later
/// connection reaches the target on the loop's thread, configured; after Stop the loop takes
/// none, so the listener can be closed without the loop accepting on a reused descriptor.
/// </summary>
public sealed class AcceptOperationTests
{
    private sealed class Target : IAcceptTarget
    {
        public readonly ConcurrentQueue<Socket> Connections = new();
        // The loop each was handed over on: the first can come before Start has returned.
        public readonly ConcurrentQueue<SocketLoop?> Loops = new();

        public void Accepted(Socket connection)
        {
            // Whatever the target starts here (a dial, a pump) lands on this thread's loop.
            var next = SocketLoop.Next();
            Loops.Enqueue(SocketLoop.IsCurrent(next) ? next : null);
            Connections.Enqueue(connection);
        }

        public TimeSpan AcceptFailed(int errno) => TimeSpan.FromMilliseconds(100);
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for {what}.");
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task HandsEveryConnectionOverOnTheLoopsThread()
    {
        using var listener = TcpSockets.Listen(new IPEndPoint(IPAddress.Loopback, 0), 64);
        var clients = new List<Socket>();
        try
        {
            // Three wait in the backlog before the loop starts; the edge for them comes at registration.
            for (var i = 0; i < 3; i++)
                clients.Add(await Dial(listener));
            var target = new Target();
            var op = AcceptOperation.Start(listener, target);
            for (var i = 0; i < 20; i++)
                clients.Add(await Dial(listener));
            await WaitFor(() => target.Connections.Count == clients.Count, $"{clients.Count} connections");

            Assert.All(target.Loops, l => Assert.Same(op.Loop, l));
            // Each client's own connection, once, with no Nagle.
            var accepted = target.Connections.Select(s => (IPEndPoint)s.RemoteEndPoint!).OrderBy(e => e.Port);
            Assert.Equal(clients.Select(c => (IPEndPoint)c.LocalEndPoint!).OrderBy(e => e.Port), accepted);
            Assert.All(target.Connections, s => Assert.True(s.NoDelay));
            // And they carry bytes.
            var first = target.Connections.First();
            var peer = clients.Single(c => c.LocalEndPoint!.Equals(first.RemoteEndPoint));
            await peer.SendAsync(new byte[] { 42 });
            var one = new byte[1];
            first.Blocking = true;
            Assert.Equal(1, first.Receive(one));
            Assert.Equal(42, one[0]);

            op.Stop();
            Assert.True(op.Completion.IsCompletedSuccessfully);
            foreach (var s in target.Connections)
                s.Dispose();
        }
        finally
        {
            foreach (var c in clients)
                c.Dispose();
        }
    }

    [Fact]
    public async Task TakesNothingOnceStopped()
    {
        using var listener = TcpSockets.Listen(new IPEndPoint(IPAddress.Loopback, 0), 64);
        var target = new Target();
        var op = AcceptOperation.Start(listener, target);
        using var before = await Dial(listener);
        await WaitFor(() => target.Connections.Count == 1, "the first connection");

        op.Stop();
        using var after = await Dial(listener);
        // Still in the listener's backlog: only this test can take it now.
        listener.Blocking = true;
        using var taken = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(after.LocalEndPoint, taken.RemoteEndPoint);
        Assert.Single(target.Connections);
        foreach (var s in target.Connections)
            s.Dispose();
    }

    private static async Task<Socket> Dial(Socket listener)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(listener.LocalEndPoint!);
        return s;
    }
}
