// glass-bench direct: the load of the end-to-end benchmark (tests/bench/E2E.Bench.ps1) for the
// "direct" path, where the application itself dials a router endpoint that the controller hands
// out for exactly one connection. glass-testpeer dials one fixed ADDR:PORT; here every connection
// first asks the controller for its own endpoint (ControllerConnection.RequestEndpointAsync, the
// call behind Connect-GlassChannel without -LocalPort), then does what glass-testpeer's
// send / setups / hold do, printing the same JSON lines.

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Glass.Testing;
using Glass.Client;

namespace Glass.Bench;

internal static class DirectPeer
{
    private const int BufferSize = 64 * 1024;

    public static int Run(string mode, Dictionary<string, string> options)
    {
        var router = Required(options, "router");
        var channel = Required(options, "channel");
        var timeout = TimeSpan.FromSeconds(options.TryGetValue("timeout", out var t)
            ? double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture) : 120);
        using var cts = new CancellationTokenSource(timeout);
        IPEndPoint controller = RouterEndpoint.ResolveAsync(router).GetAwaiter().GetResult();
        try
        {
            return mode switch
            {
                "send" => SendAsync(controller, channel, Int(options, "connections", 1), Size(options, "bytes"),
                    (ulong)Int(options, "seed", 1), Digest(options), cts.Token).GetAwaiter().GetResult(),
                "setups" => SetupsAsync(controller, channel, Int(options, "count", 100), cts.Token).GetAwaiter().GetResult(),
                "hold" => HoldAsync(controller, channel, Int(options, "connections", 1), Int(options, "parallel", 64),
                    options.GetValueOrDefault("ready-file"),
                    options.TryGetValue("seconds", out var s) ? double.Parse(s, CultureInfo.InvariantCulture) : 0,
                    cts.Token).GetAwaiter().GetResult(),
                _ => throw new UsageException($"unknown direct mode '{mode}' (send, setups or hold)"),
            };
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"glass-bench direct {mode}: timed out after {timeout.TotalSeconds} s");
            return 1;
        }
    }

    /// <summary>One connection: a fresh endpoint from the controller, then a TCP connect to it.</summary>
    private static async Task<Socket> DialAsync(IPEndPoint controller, string channel, CancellationToken ct)
    {
        IPEndPoint endpoint = await ControllerConnection.RequestEndpointAsync(controller, channel, ct: ct).ConfigureAwait(false);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task EchoByteAsync(Socket socket, byte value, CancellationToken ct)
    {
        var buffer = new byte[1] { value };
        await socket.SendAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
        int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
        if (n != 1 || buffer[0] != value)
            throw new IOException(n == 0 ? "the echo server closed the connection" : "the echo came back wrong");
    }

    // ---- send: K streams of seeded bytes, hashed both ways, like glass-testpeer send ----

    private static string Digest(Dictionary<string, string> options) =>
        options.TryGetValue("digest", out var d)
            ? StreamCheck.IsKnown(d) ? d : throw new UsageException($"--digest: '{d}' is not {StreamCheck.Sha256} or {StreamCheck.Xxh3}")
            : StreamCheck.Sha256;

    private static async Task<int> SendAsync(IPEndPoint controller, string channel, int connections, long bytes, ulong seed, string digest, CancellationToken ct)
    {
        // Endpoints first, so that the streams start together as glass-testpeer's do.
        var endpoints = new IPEndPoint[connections];
        for (int i = 0; i < connections; i++)
            endpoints[i] = await ControllerConnection.RequestEndpointAsync(controller, channel, ct: ct).ConfigureAwait(false);
        var tasks = new Task<bool>[connections];
        for (int i = 0; i < connections; i++)
        {
            int index = i;
            tasks[i] = Task.Run(() => StreamAsync(endpoints[index], index, bytes, seed + (ulong)index, digest, ct), ct);
        }
        bool[] ok = await Task.WhenAll(tasks).ConfigureAwait(false);
        return ok.All(x => x) ? 0 : 1;
    }

    private static async Task<bool> StreamAsync(IPEndPoint endpoint, int index, long bytes, ulong seed, string digest, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        long sent = 0, received = 0;
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            var receive = Task.Run(async () =>
            {
                using var hash = StreamCheck.Create(digest);
                byte[] buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
                int n;
                while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false)) > 0)
                {
                    hash.Append(buffer.AsSpan(0, n));
                    received += n;
                }
                return hash.GetHashAndReset();
            }, ct);

            using var sentHash = StreamCheck.Create(digest);
            byte[] chunk = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
            var rng = new Rng(seed);
            rng.Fill(chunk);
            for (long chunkIndex = 0; sent < bytes; chunkIndex++)
            {
                // One random chunk per connection, stamped with its position: cheap to make, and a
                // misplaced or repeated chunk still changes the digest.
                StreamCheck.StampChunk(chunk, chunkIndex);
                int length = (int)Math.Min(chunk.Length, bytes - sent);
                sentHash.Append(chunk.AsSpan(0, length));
                for (int offset = 0; offset < length;)
                    offset += await socket.SendAsync(chunk.AsMemory(offset, length - offset), SocketFlags.None, ct).ConfigureAwait(false);
                sent += length;
            }
            socket.Shutdown(SocketShutdown.Send);
            byte[] receivedHash = await receive.ConfigureAwait(false);
            string suffix = StreamCheck.FieldSuffix(digest);
            Write(new Dictionary<string, object>
            {
                ["role"] = "send",
                ["conn"] = index,
                ["sent"] = sent,
                ["sent" + suffix] = Convert.ToHexStringLower(sentHash.GetHashAndReset()),
                ["received"] = received,
                ["received" + suffix] = Convert.ToHexStringLower(receivedHash),
                ["remote"] = endpoint.ToString(),
                ["local"] = socket.LocalEndPoint?.ToString() ?? "",
                ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 6),
            });
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            Console.Error.WriteLine($"glass-bench direct send: connection {index} to {endpoint} failed: {e.Message} (sent {sent}, received {received})");
            return false;
        }
    }

    // ---- setups: sequential connect, 1-byte echo, close ----

    private static async Task<int> SetupsAsync(IPEndPoint controller, string channel, int count, CancellationToken ct)
    {
        var times = new List<double>(count);
        var requests = new List<double>(count);
        int failed = 0;
        var busy = MachineCpu.BusySeconds();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                IPEndPoint endpoint = await ControllerConnection.RequestEndpointAsync(controller, channel, ct: ct).ConfigureAwait(false);
                requests.Add(clock.Elapsed.TotalMicroseconds);
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                await EchoByteAsync(socket, (byte)i, ct).ConfigureAwait(false);
                times.Add(clock.Elapsed.TotalMicroseconds);
            }
            catch (Exception e) when (e is SocketException or IOException or GlassException && !ct.IsCancellationRequested)
            {
                failed++;
                Console.Error.WriteLine($"glass-bench direct setups: setup {i} failed: {e.Message}");
            }
        }
        double seconds = total.Elapsed.TotalSeconds;
        var cpuUs = MachineCpu.MicrosecondsPer(busy, count);
        Write(new
        {
            role = "setups",
            count,
            ok = times.Count,
            failed,
            perSecond = Math.Round(times.Count / seconds, 1),
            p50us = Percentile(times, 50),
            p99us = Percentile(times, 99),
            // The controller's share: asking for the endpoint (connect, CONNECT, OK, close).
            requestP50us = Percentile(requests, 50),
            machineCpuUs = cpuUs,
        });
        return failed == 0 ? 0 : 1;
    }

    // ---- hold: N idle connections, each proven with a 1-byte echo, checked again at the end ----

    private static async Task<int> HoldAsync(IPEndPoint controller, string channel, int connections, int parallel,
        string? readyFile, double seconds, CancellationToken ct)
    {
        var sockets = new Socket?[connections];
        int failed = 0;
        using (var gate = new SemaphoreSlim(Math.Max(1, parallel)))
        {
            var opening = Enumerable.Range(0, connections).Select(async i =>
            {
                await gate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    var socket = await DialAsync(controller, channel, ct).ConfigureAwait(false);
                    await EchoByteAsync(socket, (byte)i, ct).ConfigureAwait(false);
                    sockets[i] = socket;
                }
                catch (Exception e) when (e is SocketException or IOException or GlassException && !ct.IsCancellationRequested)
                {
                    if (Interlocked.Increment(ref failed) <= 5)
                        Console.Error.WriteLine($"glass-bench direct hold: connection {i} failed: {e.Message}");
                }
                finally
                {
                    gate.Release();
                }
            }).ToArray();
            await Task.WhenAll(opening).ConfigureAwait(false);
        }
        int open = sockets.Count(s => s is not null);
        Console.Error.WriteLine($"glass-bench direct hold: {open} of {connections} connections open");
        if (readyFile is not null)
        {
            string temp = $"{readyFile}.{Environment.ProcessId}.tmp";
            await File.WriteAllTextAsync(temp, open.ToString(CultureInfo.InvariantCulture) + "\n", ct).ConfigureAwait(false);
            File.Move(temp, readyFile, overwrite: true);
        }

        // Hold until stdin closes or the time is up.
        var stdinClosed = Task.Run(() => Console.In.ReadToEnd(), CancellationToken.None);
        var wait = seconds > 0 ? Task.Delay(TimeSpan.FromSeconds(seconds), ct) : Task.Delay(Timeout.Infinite, ct);
        await Task.WhenAny(stdinClosed, wait).ConfigureAwait(false);

        int ok = 0;
        using (var gate = new SemaphoreSlim(Math.Max(1, parallel)))
        {
            var checks = sockets.Select(async (socket, i) =>
            {
                if (socket is null)
                    return;
                await gate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    await EchoByteAsync(socket, (byte)~i, ct).ConfigureAwait(false);
                    Interlocked.Increment(ref ok);
                }
                catch (Exception e) when (e is SocketException or IOException && !ct.IsCancellationRequested)
                {
                    Console.Error.WriteLine($"glass-bench direct hold: connection {i} failed its second echo: {e.Message}");
                }
                finally
                {
                    gate.Release();
                    socket.Dispose();
                }
            }).ToArray();
            await Task.WhenAll(checks).ConfigureAwait(false);
        }
        Write(new { role = "hold", connections, ok, failed = connections - ok });
        return ok == connections ? 0 : 1;
    }

    /// <summary>Nearest-rank percentile in whole microseconds.</summary>
    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
            return 0;
        var sorted = values.Order().ToArray();
        int rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return Math.Round(sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)], 1);
    }

    private static void Write<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value));

    private static string Required(Dictionary<string, string> options, string name) =>
        options.TryGetValue(name, out var v) && v.Length > 0 ? v : throw new UsageException($"direct needs --{name}");

    private static int Int(Dictionary<string, string> options, string name, int fallback) =>
        !options.TryGetValue(name, out var v) ? fallback
        : int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n
        : throw new UsageException($"--{name}: '{v}' is not a positive integer");

    private static long Size(Dictionary<string, string> options, string name)
    {
        if (!options.TryGetValue(name, out var v))
            return 1 << 20;
        long scale = 1;
        var t = v;
        foreach (var (suffix, mult) in new[] { ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30) })
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
                (scale, t) = (mult, t[..^1]);
        }
        return long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? n * scale
            : throw new UsageException($"--{name}: '{v}' is not a byte count");
    }
}
