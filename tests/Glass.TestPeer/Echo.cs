using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using Glass.Testing;

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
            try
            {
                while (true)
                {
                    // An idle connection holds no buffer (a zero-byte receive waits for data), so
                    // one server can hold the tens of thousands of connections a scale test opens.
                    await s.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                    var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
                    try
                    {
                        var n = await s.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                        if (n == 0)
                            break;
                        await SendAllAsync(s, buffer.AsMemory(0, n)).ConfigureAwait(false);
                    }
                    finally
                    {
                        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                    }
                }
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
        var samples = new double[o.Count];
        int done = 0;
        string? error = null;
        // Blocking calls on a thread of its own: an async hop per read would be measured as the path's.
        await Task.Factory.StartNew(() =>
        {
            var deadline = o.TimeoutSeconds > 0 ? Stopwatch.GetTimestamp() + (long)(o.TimeoutSeconds * Stopwatch.Frequency) : long.MaxValue;
            int timeoutMs = o.TimeoutSeconds > 0 ? (int)Math.Ceiling(o.TimeoutSeconds * 1000) : 0;
            try
            {
                using var s = NewSocket(endpoint);
                // SO_SNDTIMEO also bounds a blocking connect(2) on Linux.
                s.SendTimeout = timeoutMs;
                s.ReceiveTimeout = timeoutMs;
                s.Connect(endpoint);
                var sent = new byte[o.Size];
                var got = new byte[o.Size];
                var gen = new PatternGenerator(o.Seed == 0 ? 1 : o.Seed);
                for (int i = 0; i < o.Warmup + o.Count; i++)
                {
                    gen.Fill(sent);
                    long start = Stopwatch.GetTimestamp();
                    for (int off = 0; off < sent.Length;)
                        off += s.Send(sent, off, sent.Length - off, SocketFlags.None);
                    for (int off = 0; off < got.Length;)
                    {
                        int n = s.Receive(got, off, got.Length - off, SocketFlags.None);
                        if (n == 0)
                            throw new IOException($"the peer closed the connection after {off} of {got.Length} bytes of round trip {i}");
                        off += n;
                    }
                    long end = Stopwatch.GetTimestamp();
                    if (!sent.AsSpan().SequenceEqual(got))
                        throw new IOException($"round trip {i} came back different");
                    if (i >= o.Warmup)
                        samples[done++] = Stopwatch.GetElapsedTime(start, end).TotalMicroseconds;
                    if (end > deadline)
                        throw new TimeoutException($"timed out after {o.TimeoutSeconds.ToString(CultureInfo.InvariantCulture)} s");
                }
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException)
            {
                error = e is SocketException se ? Program.Describe(se) : e.Message;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
        var measured = samples[..done];
        Array.Sort(measured);
        Print(new Dictionary<string, object>
        {
            ["role"] = "echo", ["size"] = o.Size, ["count"] = o.Count, ["failures"] = error is null ? 0 : 1,
            ["p50us"] = Percentile(measured, 0.50), ["p99us"] = Percentile(measured, 0.99),
            ["meanus"] = measured.Length == 0 ? 0 : Math.Round(measured.Average(), 1),
        });
        if (error is null)
            return 0;
        Console.Error.WriteLine($"glass-testpeer echo: {error} ({done} of {o.Count} measured round trips done)");
        return 1;
    }

    private static async Task<int> SetupsAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: true).ConfigureAwait(false);
        var ct = Deadline(o);
        var samples = new List<double>(o.Count);
        int failed = 0;
        string? firstError = null;
        var one = new byte[1];
        var busy = MachineCpu.BusySeconds();
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
        var cpuUs = MachineCpu.MicrosecondsPer(busy, o.Count);
        var sorted = samples.ToArray();
        Array.Sort(sorted);
        Print(new Dictionary<string, object>
        {
            ["role"] = "setups", ["count"] = o.Count, ["ok"] = sorted.Length, ["failed"] = failed,
            ["perSecond"] = Math.Round(sorted.Length / Math.Max(seconds, 1e-9), 1),
            ["p50us"] = Percentile(sorted, 0.50), ["p99us"] = Percentile(sorted, 0.99),
            ["machineCpuUs"] = cpuUs,
        });
        if (firstError is not null)
            Console.Error.WriteLine($"glass-testpeer setups: {failed} failed; first: {firstError}");
        return failed == 0 && sorted.Length == o.Count ? 0 : 1;
    }

    private static async Task<int> HoldAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: true).ConfigureAwait(false);
        var ct = Deadline(o);
        RaiseDescriptorLimit(o.Connections + 256);
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
                    for (var e = 0; e < o.Echoes; e++)
                    {
                        if (e > 0)
                            await Task.Delay(200, ct).ConfigureAwait(false);
                        await ProveAsync(s, (byte)(i + e), ct).ConfigureAwait(false);
                    }
                    sockets[i] = s;
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
                {
                    Console.Error.WriteLine($"glass-testpeer hold: connection {i} failed: {(e is SocketException se ? Program.Describe(se) : e.Message)}");
                    s.Dispose();
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Min(o.Parallel, o.Connections)).Select(_ => Opener())).ConfigureAwait(false);
        int open = sockets.Count(s => s is not null);
        Console.Error.WriteLine($"glass-testpeer hold: {open} of {o.Connections} connections open");
        if (o.ReadyFile is not null)
            await Program.WriteReadyFileAsync(o.ReadyFile, open.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);

        await WaitToReleaseAsync(o.HoldSeconds).ConfigureAwait(false);

        int ok = 0;
        next = -1;
        async Task Checker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < sockets.Length)
            {
                if (sockets[i] is not { } s)
                    continue;
                try
                {
                    await ProveAsync(s, (byte)(i + 1), ct).ConfigureAwait(false);
                    Interlocked.Increment(ref ok);
                }
                catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
                {
                    Console.Error.WriteLine($"glass-testpeer hold: connection {i} no longer echoes: {(e is SocketException se ? Program.Describe(se) : e.Message)}");
                }
                s.Dispose();
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Min(o.Parallel, o.Connections)).Select(_ => Checker())).ConfigureAwait(false);
        Print(new Dictionary<string, object> { ["role"] = "hold", ["connections"] = o.Connections, ["ok"] = ok, ["failed"] = o.Connections - ok });
        return ok == o.Connections ? 0 : 1;
    }

    /// <summary>
    /// Holds until <paramref name="seconds"/> pass (0: no limit), standard input ends (unless it
    /// is /dev/null, which always has), or SIGTERM/SIGINT arrives.
    /// </summary>
    private static async Task WaitToReleaseAsync(double seconds)
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; release.TrySetResult(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; release.TrySetResult(); });
        if (seconds > 0)
            _ = Task.Delay(TimeSpan.FromSeconds(seconds)).ContinueWith(_ => release.TrySetResult(), TaskScheduler.Default);
        if (!StdinIsDevNull())
        {
            _ = Task.Run(async () =>
            {
                var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                while (await stdin.ReadAsync(buffer).ConfigureAwait(false) > 0)
                {
                }
                release.TrySetResult();
            });
        }
        await release.Task.ConfigureAwait(false);
    }

    private static bool StdinIsDevNull()
    {
        try
        {
            return File.ResolveLinkTarget("/proc/self/fd/0", returnFinalTarget: false)?.FullName == "/dev/null";
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Lets this process hold <paramref name="needed"/> descriptors, as far as the hard limit (or root) allows.</summary>
    private static unsafe void RaiseDescriptorLimit(int needed)
    {
        if (!OperatingSystem.IsLinux())
            return;
        RLimit l;
        if (getrlimit(RLIMIT_NOFILE, &l) != 0 || l.Current >= (ulong)needed)
            return;
        var want = new RLimit { Current = Math.Max((ulong)needed, l.Current), Maximum = Math.Max((ulong)needed, l.Maximum) };
        // Raising the hard limit needs CAP_SYS_RESOURCE; otherwise go as far as it allows.
        if (setrlimit(RLIMIT_NOFILE, &want) != 0)
        {
            want = new RLimit { Current = l.Maximum, Maximum = l.Maximum };
            setrlimit(RLIMIT_NOFILE, &want);
            Console.Error.WriteLine($"glass-testpeer hold: may hold at most {l.Maximum} descriptors (RLIMIT_NOFILE), {needed} wanted");
        }
    }

    // sys/resource.h
    private const int RLIMIT_NOFILE = 7;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern unsafe int getrlimit(int resource, RLimit* limit);

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern unsafe int setrlimit(int resource, RLimit* limit);

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
