using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Glass.TestPeer;

/// <summary>
/// Small-message workloads: an echo server, round-trip latency, sequential connection setups, and
/// many idle connections held open. Each checks what it gets back, byte for byte.
/// </summary>
internal static class Echo
{
    public static Task<int> RunAsync(Options o) => o.Command switch
    {
        "echo-serve" => ServeAsync(o),
        "echo" => RoundTripsAsync(o),
        "setups" => SetupsAsync(o),
        _ => HoldAsync(o),
    };

    private static Socket NewSocket(IPEndPoint ep) =>
        new(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    private static async Task<int> ServeAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: false).ConfigureAwait(false);
        using var listener = NewSocket(endpoint);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(endpoint);
        listener.Listen(4096);
        string bound = Program.Format(listener.LocalEndPoint);
        Console.Error.WriteLine($"glass-testpeer echo-serve: listening on {bound}");
        if (o.ReadyFile is not null)
            await Program.WriteReadyFileAsync(o.ReadyFile, bound).ConfigureAwait(false);
        while (true)
        {
            Socket s = await listener.AcceptAsync().ConfigureAwait(false);
            s.NoDelay = true;
            _ = EchoOneAsync(s);
        }
    }

    private static async Task EchoOneAsync(Socket s)
    {
        using (s)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                int n;
                while ((n = await s.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false)) > 0)
                    await SendAllAsync(s, buffer.AsMemory(0, n)).ConfigureAwait(false);
                s.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
                // The client went away: nothing to echo to.
            }
        }
    }

    private static async Task SendAllAsync(Socket s, ReadOnlyMemory<byte> data)
    {
        while (data.Length > 0)
            data = data[await s.SendAsync(data, SocketFlags.None).ConfigureAwait(false)..];
    }

    private static async Task ReceiveExactlyAsync(Socket s, Memory<byte> into, CancellationToken ct)
    {
        while (into.Length > 0)
        {
            int n = await s.ReceiveAsync(into, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
                throw new IOException("the peer closed the connection mid-answer");
            into = into[n..];
        }
    }

    private static CancellationToken Deadline(Options o) =>
        o.TimeoutSeconds > 0 ? new CancellationTokenSource(TimeSpan.FromSeconds(o.TimeoutSeconds)).Token : CancellationToken.None;

    private static async Task<int> RoundTripsAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: true).ConfigureAwait(false);
        var ct = Deadline(o);
        using var s = NewSocket(endpoint);
        await s.ConnectAsync(endpoint, ct).ConfigureAwait(false);
        var sent = new byte[o.Size];
        var got = new byte[o.Size];
        var gen = new PatternGenerator(o.Seed == 0 ? 1 : o.Seed);
        var samples = new double[o.Count];
        for (int i = 0; i < o.Warmup + o.Count; i++)
        {
            gen.Fill(sent);
            long start = Stopwatch.GetTimestamp();
            await SendAllAsync(s, sent).ConfigureAwait(false);
            await ReceiveExactlyAsync(s, got, ct).ConfigureAwait(false);
            double us = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (!sent.AsSpan().SequenceEqual(got))
            {
                Console.Error.WriteLine($"glass-testpeer echo: round trip {i} came back different");
                return 1;
            }
            if (i >= o.Warmup)
                samples[i - o.Warmup] = us;
        }
        Array.Sort(samples);
        Print(new Dictionary<string, object>
        {
            ["role"] = "echo", ["size"] = o.Size, ["count"] = o.Count, ["failures"] = 0,
            ["p50us"] = Percentile(samples, 0.50), ["p99us"] = Percentile(samples, 0.99),
            ["meanus"] = samples.Length == 0 ? 0 : Math.Round(samples.Average(), 1),
        });
        return 0;
    }

    private static async Task<int> SetupsAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: true).ConfigureAwait(false);
        var ct = Deadline(o);
        var samples = new List<double>(o.Count);
        int failed = 0;
        string? firstError = null;
        var one = new byte[1];
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < o.Count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                using var s = NewSocket(endpoint);
                await s.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                one[0] = (byte)i;
                await SendAllAsync(s, one).ConfigureAwait(false);
                var back = new byte[1];
                await ReceiveExactlyAsync(s, back, ct).ConfigureAwait(false);
                if (back[0] != one[0])
                    throw new IOException("the echo differed");
                samples.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                failed++;
                firstError ??= $"connection {i}: {(e is SocketException se ? Program.Describe(se) : e.Message)}";
                if (ct.IsCancellationRequested)
                    break;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var sorted = samples.ToArray();
        Array.Sort(sorted);
        Print(new Dictionary<string, object>
        {
            ["role"] = "setups", ["count"] = o.Count, ["ok"] = sorted.Length, ["failed"] = failed,
            ["perSecond"] = Math.Round(sorted.Length / Math.Max(seconds, 1e-9), 1),
            ["p50us"] = Percentile(sorted, 0.50), ["p99us"] = Percentile(sorted, 0.99),
        });
        if (firstError is not null)
            Console.Error.WriteLine($"glass-testpeer setups: {failed} failed; first: {firstError}");
        return failed == 0 && sorted.Length == o.Count ? 0 : 1;
    }

    private static async Task<int> HoldAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: true).ConfigureAwait(false);
        var ct = Deadline(o);
        var sockets = new Socket?[o.Connections];
        int next = -1;
        async Task Opener()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < sockets.Length)
            {
                var s = NewSocket(endpoint);
                try
                {
                    await s.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                    await ProveAsync(s, (byte)i, ct).ConfigureAwait(false);
                    sockets[i] = s;
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
                {
                    s.Dispose();
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Min(o.Parallel, o.Connections)).Select(_ => Opener())).ConfigureAwait(false);
        int open = sockets.Count(s => s is not null);
        Console.Error.WriteLine($"glass-testpeer hold: {open} of {o.Connections} connections open");
        if (o.ReadyFile is not null)
            await Program.WriteReadyFileAsync(o.ReadyFile, open.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);

        if (o.HoldSeconds > 0)
            await Task.Delay(TimeSpan.FromSeconds(o.HoldSeconds)).ConfigureAwait(false);
        else
            await Task.Run(() => Console.In.ReadToEnd()).ConfigureAwait(false);

        int ok = 0;
        for (int i = 0; i < sockets.Length; i++)
        {
            if (sockets[i] is not { } s)
                continue;
            try
            {
                await ProveAsync(s, (byte)(i + 1), ct).ConfigureAwait(false);
                ok++;
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
            }
            s.Dispose();
        }
        Print(new Dictionary<string, object> { ["role"] = "hold", ["connections"] = o.Connections, ["ok"] = ok, ["failed"] = o.Connections - ok });
        return ok == o.Connections ? 0 : 1;
    }

    private static async Task ProveAsync(Socket s, byte b, CancellationToken ct)
    {
        var one = new[] { b };
        await SendAllAsync(s, one).ConfigureAwait(false);
        var back = new byte[1];
        await ReceiveExactlyAsync(s, back, ct).ConfigureAwait(false);
        if (back[0] != b)
            throw new IOException("the echo differed");
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)], 1);

    private static void Print(Dictionary<string, object> fields) => Console.Out.WriteLine(JsonSerializer.Serialize(fields));
}
