using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Glass.Client;

namespace Glass.Bench;

/// <summary>
/// The client's forwarding: the same bytes through the pooled copy (the anchor) and through
/// splice(2), between loopback sockets, as throughput and process CPU per GiB.
/// </summary>
internal static class PumpBench
{
    public readonly record struct Result(string Pump, double BytesPerSecond, double CpuSecondsPerGiB);

    public static IReadOnlyList<Result> Run(long bytes)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var results = new List<Result>();
        // Alternate, so that a noisy neighbour hurts both about equally; keep the better of two.
        foreach (var pump in new[] { "copy", "splice", "copy", "splice" })
            results.Add(Once(listener, pump, bytes));
        return results.GroupBy(r => r.Pump).Select(g => g.MaxBy(r => r.BytesPerSecond)).ToList();
    }

    private static Result Once(Socket listener, string pump, long bytes)
    {
        (Socket Outer, Socket Inner) Pair()
        {
            var outer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var accept = listener.AcceptAsync();
            outer.ConnectAsync(listener.LocalEndPoint!).GetAwaiter().GetResult();
            return (outer, accept.GetAwaiter().GetResult());
        }
        var (left, leftInner) = Pair();
        var (right, rightInner) = Pair();
        using (left)
        using (right)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var running = pump == "splice"
                ? StreamPump.RunAsync(leftInner, rightInner, 0, CancellationToken.None)
                : StreamPump.CopyBothAsync(leftInner, rightInner, CancellationToken.None);
            var send = Task.Run(async () =>
            {
                var data = new byte[1 << 20];
                for (long sent = 0; sent < bytes;)
                    sent += await left.SendAsync(data.AsMemory(0, (int)Math.Min(data.Length, bytes - sent)), SocketFlags.None);
                left.Shutdown(SocketShutdown.Send);
            });
            var buffer = new byte[1 << 20];
            long received = 0;
            int n;
            while ((n = right.Receive(buffer)) > 0)
                received += n;
            send.GetAwaiter().GetResult();
            right.Shutdown(SocketShutdown.Send);
            running.GetAwaiter().GetResult();
            var elapsed = clock.Elapsed.TotalSeconds;
            if (received != bytes)
                throw new InvalidOperationException($"the {pump} pump delivered {received} of {bytes} bytes");
            var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            return new Result(pump, bytes / elapsed, cpuSeconds / (bytes / (double)(1L << 30)));
        }
    }
}
