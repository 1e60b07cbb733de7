// glass-testpeer: a traffic peer for Glass end-to-end tests and benchmarks.
//
// Both roles send a deterministic pseudo-random byte stream (xoshiro256** seeded through
// splitmix64 from seed + connection index), half-close, read the other direction to EOF and
// report byte counts and SHA-256 digests of both directions as one JSON line per connection.
// A test checks integrity by cross-matching: serve.receivedSha256 == send.sentSha256 and
// serve.sentSha256 == send.receivedSha256. Benchmarks ask for --digest xxh3 (StreamCheck).

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Glass.Testing;

namespace Glass.TestPeer;

internal static class Program
{
    internal const int BufferSize = 64 * 1024;

    private const string Usage = """
        glass-testpeer: deterministic traffic peer for Glass end-to-end tests and benchmarks.

        Usage:
          glass-testpeer serve --listen ADDR:PORT [--bytes N] [--seed S] [--count C]
                               [--ready-file PATH] [--timeout SEC] [--hold-file PATH]
                               [--digest sha256|xxh3]
          glass-testpeer send  --connect ADDR:PORT [--bytes N] [--seed S] [--connections K]
                               [--timeout SEC] [--digest sha256|xxh3]
          glass-testpeer echo-serve --listen ADDR:PORT [--ready-file PATH]
          glass-testpeer echo  --connect ADDR:PORT [--size N] [--count C] [--warmup W]
                               [--seed S] [--timeout SEC]
          glass-testpeer setups --connect ADDR:PORT [--count C] [--timeout SEC]
          glass-testpeer hold  --connect ADDR:PORT --connections N [--parallel P]
                               [--ready-file PATH] [--seconds S] [--timeout SEC] [--echoes E]
          glass-testpeer --help

        serve   Listens on ADDR:PORT (port 0 picks a free port). Accepts C connections
                (default 1; 0 = serve forever) and handles them concurrently: each one sends
                N bytes generated from seed S + connection index, half-closes, and reads the
                peer's data to EOF. Exits once all C accepted connections have finished.
                --ready-file PATH is created once the socket is listening; it contains the
                bound endpoint (written atomically, so its existence means "ready").
                --timeout SEC limits each connection (default 0 = no limit).
        send    Opens K connections (default 1) concurrently to ADDR:PORT; each sends N bytes
                from seed S + index, half-closes and reads to EOF. --timeout SEC is an overall
                deadline (default 120).

        serve --send-after-eof true sends only after the peer's EOF (half-close tests);
        serve --hold-file PATH reads nothing while PATH exists: flow control then holds the
        peer's sender mid-transfer for as long as a test needs (checked every 20 ms);
        send --abort-after N sends N bytes, then resets the connection (SO_LINGER 0).
        --digest xxh3 (both ends must agree; for benchmarks): the stream is one seeded random
        64 KiB chunk repeated, each copy stamped with its index, checked by XXH3-64, and the
        fields are sentXxh3/receivedXxh3. SHA-256 of the full pseudo-random stream costs about
        0.9 ns a byte at each end, enough to cap a 2-core path near 5 Gbit/s.

        Defaults: --bytes 1048576; --seed 1 for send, 2 for serve (so that the two directions
        differ). N accepts the suffixes K, M, G (powers of 1024, e.g. 64M or 64MiB).
        ADDR may be an IPv4 address, [IPv6] or a host name (not for the listening commands).

        Output of serve and send: one JSON line per successfully finished connection on stdout:
          {"role":"serve|send","conn":i,"sent":N,"sentSha256":"hex","received":M,
           "receivedSha256":"hex","remote":"addr:port","local":"addr:port","seconds":t}

        Small-message workloads (TCP_NODELAY on every socket; every answer checked byte for
        byte; --timeout SEC is an overall deadline, default none):
        echo-serve  Serves until killed, every connection concurrently, echoing every byte back.
                --ready-file as for serve.
        echo    One connection; W unmeasured (default 100), then C measured (default 1000)
                round trips, each sending N bytes (default 64) of the seeded stream and reading
                N back. Prints one line
                {"role":"echo","size":N,"count":C,"failures":0|1,"p50us":x,"p99us":y,"meanus":z}
                (over the round trips done, should one fail).
        setups  C times (default 1000) in sequence: connect, send 1 byte, read its echo, close.
                Prints {"role":"setups","count":C,"ok":n,"failed":f,"perSecond":r,
                "p50us":x,"p99us":y,"machineCpuUs":z}, z the whole machine's busy CPU
                (/proc/stat) across the sequence per setup, -1 if unknown; the first error
                goes to stderr.
        hold    Opens N connections, P at a time (default 64), each proven by a 1-byte echo
                (E of them, 200 ms apart, with --echoes E: the later ones cross a router that
                hands the flow to its kernel after the handshake; 0: connected, nothing sent);
                writes the number open to the ready file; holds them until S seconds pass
                (default: no limit), standard input ends (unless it is /dev/null) or
                SIGTERM/SIGINT arrives; then checks that each still echoes, closes all, and
                prints {"role":"hold","connections":N,"ok":n,"failed":f}. Raises its own
                RLIMIT_NOFILE as far as allowed.

        Errors go to stderr. Exit codes: 0 all connections succeeded, 1 a connection failed
        (refused, reset, timed out, a differing echo, ...), 2 bad arguments.
        """;

    private static async Task<int> Main(string[] args)
    {
        Options options;
        try
        {
            if (args.Length == 0)
                throw new UsageException("missing command (serve or send)");
            if (args[0] is "--help" or "-h" or "help" || args.Contains("--help") || args.Contains("-h"))
            {
                Console.Out.WriteLine(Usage);
                return 0;
            }
            options = Options.Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"glass-testpeer: {e.Message}");
            Console.Error.WriteLine("Run 'glass-testpeer --help' for usage.");
            return 2;
        }

        try
        {
            return options.Command switch
            {
                "serve" => await Server.RunAsync(options).ConfigureAwait(false),
                "send" => await Client.RunAsync(options).ConfigureAwait(false),
                _ => await Echo.RunAsync(options).ConfigureAwait(false),
            };
        }
        catch (UsageException e)
        {
            // Raised while resolving ADDR:PORT, before any traffic.
            Console.Error.WriteLine($"glass-testpeer {options.Command}: {e.Message}");
            return 2;
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"glass-testpeer {options.Command}: {Describe(e)}");
            return 1;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"glass-testpeer {options.Command}: {e.Message}");
            return 1;
        }
    }

    internal static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.ConnectionReset => "connection reset by peer",
        SocketError.ConnectionAborted => "connection aborted",
        SocketError.TimedOut => "timed out (kernel)",
        SocketError.HostUnreachable => "host unreachable",
        SocketError.NetworkUnreachable => "network unreachable",
        SocketError.AddressAlreadyInUse => "address already in use",
        SocketError.AddressNotAvailable => "address not available",
        SocketError.Shutdown => "broken pipe (the peer closed or reset the connection)",
        _ => $"{e.SocketErrorCode}: {e.Message}",
    };

    /// <summary>Writes the ready file atomically, so its existence means "ready".</summary>
    internal static async Task WriteReadyFileAsync(string path, string text)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        string temp = $"{full}.{Environment.ProcessId}.tmp";
        await File.WriteAllTextAsync(temp, text + "\n").ConfigureAwait(false);
        File.Move(temp, full, overwrite: true);
    }

    internal static string Format(EndPoint? endPoint)
    {
        if (endPoint is not IPEndPoint ip)
            return endPoint?.ToString() ?? "";
        IPAddress address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
        return new IPEndPoint(address, ip.Port).ToString();
    }
}

internal sealed class UsageException(string message) : Exception(message);

/// <summary>Parsed command line.</summary>
internal sealed class Options
{
    public string Command { get; private init; } = "";
    public string EndPointText { get; private init; } = "";
    public long Bytes { get; private init; } = 1024 * 1024;
    public ulong Seed { get; private init; }
    public int Count { get; private init; } = 1;
    public int Connections { get; private init; } = 1;
    public string? ReadyFile { get; private init; }
    public double TimeoutSeconds { get; private init; }
    /// <summary>serve: send only after the peer's EOF arrived (a half-close test).</summary>
    public bool SendAfterEof { get; private init; }
    /// <summary>serve: read nothing while this file exists.</summary>
    public string? HoldFile { get; private init; }
    /// <summary>send: after this many bytes, abort the connection with a reset; -1 = never.</summary>
    public long AbortAfter { get; private init; } = -1;
    /// <summary>echo: bytes per round trip.</summary>
    public int Size { get; private init; } = 64;
    /// <summary>echo: unmeasured round trips first.</summary>
    public int Warmup { get; private init; } = 100;
    /// <summary>hold: connections opened at once.</summary>
    public int Parallel { get; private init; } = 64;
    /// <summary>hold: echoes proving each connection when it opens, 200 ms apart.</summary>
    public int Echoes { get; private init; } = 1;
    /// <summary>hold: how long to hold (0 = until standard input closes).</summary>
    public double HoldSeconds { get; private init; }
    /// <summary>serve, send: how the bulk stream is made and checked (<see cref="StreamCheck"/>).</summary>
    public string Digest { get; private init; } = StreamCheck.Sha256;

    public static Options Parse(string[] args)
    {
        string command = args[0];
        if (command is not ("serve" or "send" or "echo-serve" or "echo" or "setups" or "hold"))
            throw new UsageException($"unknown command '{command}' (expected serve, send, echo-serve, echo, setups or hold)");

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] allowed = command switch
        {
            "serve" => ["--listen", "--bytes", "--seed", "--count", "--ready-file", "--timeout", "--send-after-eof", "--hold-file", "--digest"],
            "send" => ["--connect", "--bytes", "--seed", "--connections", "--timeout", "--abort-after", "--digest"],
            "echo-serve" => ["--listen", "--ready-file"],
            "echo" => ["--connect", "--size", "--count", "--warmup", "--seed", "--timeout"],
            "setups" => ["--connect", "--count", "--timeout"],
            _ => ["--connect", "--connections", "--ready-file", "--seconds", "--parallel", "--timeout", "--echoes"],
        };
        for (int i = 1; i < args.Length; i++)
        {
            string arg = args[i];
            string name;
            string? value = null;
            int eq = arg.IndexOf('=');
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            else
            {
                name = arg;
            }
            if (!allowed.Contains(name))
                throw new UsageException($"unknown option '{name}' for {command}");
            if (value is null)
            {
                if (i + 1 >= args.Length)
                    throw new UsageException($"option {name} needs a value");
                value = args[++i];
            }
            if (!values.TryAdd(name, value))
                throw new UsageException($"option {name} given twice");
        }

        string endpointOption = command is "serve" or "echo-serve" ? "--listen" : "--connect";
        if (!values.TryGetValue(endpointOption, out string? endpoint) || endpoint.Length == 0)
            throw new UsageException($"{command} needs {endpointOption} ADDR:PORT");

        return new Options
        {
            Command = command,
            EndPointText = endpoint,
            Bytes = values.TryGetValue("--bytes", out string? b) ? ParseSize(b) : 1024 * 1024,
            Seed = values.TryGetValue("--seed", out string? s) ? ParseSeed(s) : command == "send" ? 1UL : 2UL,
            Count = values.TryGetValue("--count", out string? c) ? ParseInt("--count", c, 0) : command is "echo" or "setups" ? 1000 : 1,
            Connections = values.TryGetValue("--connections", out string? k) ? ParseInt("--connections", k, 1) : 1,
            ReadyFile = values.GetValueOrDefault("--ready-file"),
            SendAfterEof = values.TryGetValue("--send-after-eof", out string? sae) && ParseBool("--send-after-eof", sae),
            HoldFile = values.GetValueOrDefault("--hold-file"),
            AbortAfter = values.TryGetValue("--abort-after", out string? ab) ? ParseSize(ab) : -1,
            Size = values.TryGetValue("--size", out string? sz) ? (int)Math.Min(ParseSize(sz), 16 << 20) : 64,
            Warmup = values.TryGetValue("--warmup", out string? wu) ? ParseInt("--warmup", wu, 0) : 100,
            Parallel = values.TryGetValue("--parallel", out string? pa) ? ParseInt("--parallel", pa, 1) : 64,
            Echoes = values.TryGetValue("--echoes", out string? ec) ? ParseInt("--echoes", ec, 0) : 1,
            HoldSeconds = values.TryGetValue("--seconds", out string? hs) ? ParseTimeout(hs) : 0,
            Digest = values.TryGetValue("--digest", out string? dg)
                ? StreamCheck.IsKnown(dg) ? dg : throw new UsageException($"--digest: '{dg}' is not {StreamCheck.Sha256} or {StreamCheck.Xxh3}")
                : StreamCheck.Sha256,
            TimeoutSeconds = values.TryGetValue("--timeout", out string? t)
                ? ParseTimeout(t)
                : command == "send" ? 120 : 0,
        };
    }

    private static long ParseSize(string text)
    {
        string t = text.Trim();
        long multiplier = 1;
        foreach ((string suffix, long mult) in new (string, long)[]
                 {
                     ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30),
                     ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30),
                 })
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                multiplier = mult;
                t = t[..^suffix.Length];
                break;
            }
        }
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
            throw new UsageException($"--bytes: '{text}' is not a byte count");
        try
        {
            return checked(n * multiplier);
        }
        catch (OverflowException)
        {
            throw new UsageException($"--bytes: '{text}' is too large");
        }
    }

    private static bool ParseBool(string name, string text) =>
        bool.TryParse(text, out bool v) ? v : throw new UsageException($"{name}: '{text}' is not true or false");

    private static ulong ParseSeed(string text)
    {
        if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong u))
            return u;
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            return unchecked((ulong)l);
        throw new UsageException($"--seed: '{text}' is not an integer");
    }

    private static int ParseInt(string name, string text, int min)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < min)
            throw new UsageException($"{name}: '{text}' is not an integer >= {min}");
        return n;
    }

    private static double ParseTimeout(string text)
    {
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double d)
            || d < 0 || d > int.MaxValue / 1000.0)
            throw new UsageException($"--timeout: '{text}' is not a number of seconds >= 0");
        return d;
    }

    /// <summary>Parses ADDR:PORT; host names are resolved only when <paramref name="allowHostName"/>.</summary>
    public static async Task<IPEndPoint> ResolveAsync(string text, bool allowHostName)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
            throw new UsageException($"'{text}' is not ADDR:PORT");
        string host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        else if (host.Contains(':'))
            throw new UsageException($"'{text}': write IPv6 addresses in brackets, e.g. [::1]:9000");
        if (!int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port > 65535)
            throw new UsageException($"'{text}': bad port");
        if (IPAddress.TryParse(host, out IPAddress? address))
            return new IPEndPoint(address, port);
        if (!allowHostName)
            throw new UsageException($"'{text}': '{host}' is not an IP address");
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new UsageException($"'{host}' does not resolve: {e.Message}");
        }
        IPAddress? pick = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                          ?? addresses.FirstOrDefault();
        return pick is null
            ? throw new UsageException($"'{host}' has no addresses")
            : new IPEndPoint(pick, port);
    }
}

/// <summary>
/// xoshiro256** seeded through splitmix64. The stream is the sequence of 64-bit outputs in
/// little-endian byte order; a fill of a length that is not a multiple of 8 consumes a whole
/// word and truncates it, which only ever happens for the final chunk of a stream.
/// </summary>
internal struct PatternGenerator
{
    private ulong _s0, _s1, _s2, _s3;

    public PatternGenerator(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>One xoshiro256** step: returns the next word and advances the state.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong Next(ref ulong s0, ref ulong s1, ref ulong s2, ref ulong s3)
    {
        ulong result = System.Numerics.BitOperations.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = System.Numerics.BitOperations.RotateLeft(s3, 45);
        return result;
    }

    public void Fill(Span<byte> destination)
    {
        ulong s0 = _s0, s1 = _s1, s2 = _s2, s3 = _s3;
        int words = destination.Length / 8;
        Span<ulong> span = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(destination[..(words * 8)]);
        bool little = BitConverter.IsLittleEndian;
        for (int i = 0; i < span.Length; i++)
        {
            ulong result = Next(ref s0, ref s1, ref s2, ref s3);
            span[i] = little ? result : System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(result);
        }
        int rest = destination.Length - words * 8;
        if (rest > 0)
        {
            ulong result = Next(ref s0, ref s1, ref s2, ref s3);
            Span<byte> tail = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(tail, result);
            tail[..rest].CopyTo(destination[(words * 8)..]);
        }
        _s0 = s0;
        _s1 = s1;
        _s2 = s2;
        _s3 = s3;
    }
}

/// <summary>Progress of one connection, kept for error messages.</summary>
internal sealed class Transfer
{
    public long Sent;
    public long Received;
    public byte[] SentHash = [];
    public byte[] ReceivedHash = [];
    public string Digest = StreamCheck.Sha256;
    public string Remote = "";
    public string Local = "";
}

internal static class Traffic
{
    /// <summary>
    /// Sends <paramref name="bytes"/> of the seeded stream while concurrently receiving to EOF.
    /// On failure of either direction the socket is closed so that the other one ends too.
    /// </summary>
    public static async Task RunAsync(Socket socket, Transfer transfer, long bytes, ulong seed, CancellationToken ct,
        bool sendAfterEof = false, string? holdFile = null)
    {
        string digest = transfer.Digest;
        transfer.Remote = Program.Format(socket.RemoteEndPoint);
        transfer.Local = Program.Format(socket.LocalEndPoint);
        Task receive = Task.Run(() => ReceiveAsync(socket, transfer, digest, holdFile, ct), CancellationToken.None);
        if (sendAfterEof)
            await receive.ConfigureAwait(false);
        Task send = Task.Run(() => SendAsync(socket, bytes, seed, transfer, digest, ct), CancellationToken.None);
        try
        {
            Task first = await Task.WhenAny(send, receive).ConfigureAwait(false);
            if (first.IsFaulted || first.IsCanceled)
                socket.Dispose();
            await Task.WhenAll(send, receive).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            // Prefer the most informative failure: a socket error over a consequent disposal.
            Exception? best = Pick(send.Exception, receive.Exception);
            if (best is not null)
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(best);
            throw;
        }
    }

    private static Exception? Pick(AggregateException? a, AggregateException? b)
    {
        Exception?[] all = [a?.InnerException, b?.InnerException];
        return all.FirstOrDefault(e => e is SocketException { SocketErrorCode: SocketError.ConnectionReset })
               ?? all.FirstOrDefault(e => e is SocketException se
                                          && se.SocketErrorCode is not (SocketError.OperationAborted or SocketError.Shutdown))
               ?? all.FirstOrDefault(e => e is SocketException)
               ?? all.FirstOrDefault(e => e is OperationCanceledException)
               ?? all.FirstOrDefault(e => e is not null);
    }

    private static async Task SendAsync(Socket socket, long bytes, ulong seed, Transfer transfer, string digest, CancellationToken ct)
    {
        var generator = new PatternGenerator(seed);
        using var hash = StreamCheck.Create(digest);
        bool fast = digest == StreamCheck.Xxh3;
        byte[] buffer = GC.AllocateUninitializedArray<byte>(Program.BufferSize, pinned: true);
        if (fast)
            generator.Fill(buffer);
        long remaining = bytes;
        for (long chunk = 0; remaining > 0; chunk++)
        {
            int length = (int)Math.Min(remaining, buffer.Length);
            if (fast)
                StreamCheck.StampChunk(buffer, chunk);
            else
                generator.Fill(buffer.AsSpan(0, length));
            hash.Append(buffer.AsSpan(0, length));
            int offset = 0;
            while (offset < length)
            {
                int n = await socket.SendAsync(buffer.AsMemory(offset, length - offset), SocketFlags.None, ct)
                    .ConfigureAwait(false);
                offset += n;
                Interlocked.Add(ref transfer.Sent, n);
            }
            remaining -= length;
        }
        socket.Shutdown(SocketShutdown.Send);
        transfer.SentHash = hash.GetHashAndReset();
    }

    private static async Task ReceiveAsync(Socket socket, Transfer transfer, string digest, string? holdFile, CancellationToken ct)
    {
        using var hash = StreamCheck.Create(digest);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(Program.BufferSize, pinned: true);
        while (true)
        {
            // A test holds the transfer while it looks at it; the connection's timeout still applies.
            while (holdFile is not null && File.Exists(holdFile))
                await Task.Delay(20, ct).ConfigureAwait(false);
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
                break;
            hash.Append(buffer.AsSpan(0, n));
            Interlocked.Add(ref transfer.Received, n);
        }
        transfer.ReceivedHash = hash.GetHashAndReset();
    }

    /// <summary>Sends some bytes, then closes with SO_LINGER 0 so the kernel sends a reset.</summary>
    public static async Task AbortAfterAsync(Socket socket, long bytes, CancellationToken ct)
    {
        var buffer = new byte[Math.Max(1, Math.Min(bytes, Program.BufferSize))];
        for (long left = bytes; left > 0;)
        {
            int n = await socket.SendAsync(buffer.AsMemory(0, (int)Math.Min(left, buffer.Length)), SocketFlags.None, ct)
                .ConfigureAwait(false);
            left -= n;
        }
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    public static void Report(string role, int conn, Transfer t, double seconds)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("role", role);
            json.WriteNumber("conn", conn);
            json.WriteNumber("sent", t.Sent);
            string suffix = StreamCheck.FieldSuffix(t.Digest);
            json.WriteString("sent" + suffix, Convert.ToHexStringLower(t.SentHash));
            json.WriteNumber("received", t.Received);
            json.WriteString("received" + suffix, Convert.ToHexStringLower(t.ReceivedHash));
            json.WriteString("remote", t.Remote);
            json.WriteString("local", t.Local);
            json.WriteNumber("seconds", Math.Round(seconds, 6));
            json.WriteEndObject();
        }
        // Console.Out is synchronized and auto-flushing: one whole line per call.
        Console.Out.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }

    public static string Failure(Exception e, double timeoutSeconds, Transfer? t, long bytes)
    {
        string what = e switch
        {
            SocketException se => Program.Describe(se),
            OperationCanceledException => $"timed out after {timeoutSeconds.ToString(CultureInfo.InvariantCulture)} s",
            ObjectDisposedException => "socket closed",
            _ => e.Message,
        };
        return t is null
            ? what
            : $"{what} (sent {Interlocked.Read(ref t.Sent)} of {bytes} bytes, received {Interlocked.Read(ref t.Received)})";
    }
}

internal static class Server
{
    public static async Task<int> RunAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: false).ConfigureAwait(false);
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            listener.DualMode = true;
        listener.Bind(endpoint);
        listener.Listen(1024);
        string bound = Program.Format(listener.LocalEndPoint);
        Console.Error.WriteLine($"glass-testpeer serve: listening on {bound}");

        if (o.ReadyFile is not null)
            await Program.WriteReadyFileAsync(o.ReadyFile, bound).ConfigureAwait(false);

        var running = new List<Task<bool>>();
        int failures = 0;
        for (int index = 0; o.Count == 0 || index < o.Count; index++)
        {
            Socket client = await listener.AcceptAsync().ConfigureAwait(false);
            running.Add(HandleAsync(client, index, o));
            if (o.Count == 0)
            {
                // Serving forever: do not accumulate finished connections.
                failures += running.Count(t => t.IsCompleted && !t.Result);
                running.RemoveAll(t => t.IsCompleted);
            }
        }
        listener.Close();
        bool[] results = await Task.WhenAll(running).ConfigureAwait(false);
        failures += results.Count(ok => !ok);
        return failures == 0 ? 0 : 1;
    }

    private static async Task<bool> HandleAsync(Socket client, int index, Options o)
    {
        var clock = Stopwatch.StartNew();
        using var cts = o.TimeoutSeconds > 0
            ? new CancellationTokenSource(TimeSpan.FromSeconds(o.TimeoutSeconds))
            : new CancellationTokenSource();
        string remote = Program.Format(client.RemoteEndPoint);
        var t = new Transfer { Digest = o.Digest };
        try
        {
            using (client)
            {
                await Traffic.RunAsync(client, t, o.Bytes, unchecked(o.Seed + (ulong)index), cts.Token, o.SendAfterEof, o.HoldFile)
                    .ConfigureAwait(false);
                Traffic.Report("serve", index, t, clock.Elapsed.TotalSeconds);
            }
            return true;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(
                $"glass-testpeer serve: connection {index} from {remote} failed: {Traffic.Failure(e, o.TimeoutSeconds, t, o.Bytes)}");
            return false;
        }
    }
}

internal static class Client
{
    public static async Task<int> RunAsync(Options o)
    {
        IPEndPoint endpoint = await Options.ResolveAsync(o.EndPointText, allowHostName: true).ConfigureAwait(false);
        using var cts = o.TimeoutSeconds > 0
            ? new CancellationTokenSource(TimeSpan.FromSeconds(o.TimeoutSeconds))
            : new CancellationTokenSource();
        var tasks = new Task<bool>[o.Connections];
        for (int i = 0; i < o.Connections; i++)
        {
            int index = i;
            tasks[i] = Task.Run(() => ConnectionAsync(endpoint, index, o, cts.Token));
        }
        bool[] results = await Task.WhenAll(tasks).ConfigureAwait(false);
        int failed = results.Count(ok => !ok);
        if (failed > 0)
        {
            Console.Error.WriteLine(
                $"glass-testpeer send: {failed} of {o.Connections} connection(s) to {Program.Format(endpoint)} failed");
            return 1;
        }
        return 0;
    }

    private static async Task<bool> ConnectionAsync(IPEndPoint endpoint, int index, Options o, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        string stage = "connect";
        Transfer? transfer = null;
        try
        {
            using (socket)
            {
                await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                if (o.AbortAfter >= 0)
                {
                    await Traffic.AbortAfterAsync(socket, o.AbortAfter, ct).ConfigureAwait(false);
                    return true;
                }
                stage = "transfer";
                transfer = new Transfer { Digest = o.Digest };
                await Traffic.RunAsync(socket, transfer, o.Bytes, unchecked(o.Seed + (ulong)index), ct)
                    .ConfigureAwait(false);
                Traffic.Report("send", index, transfer, clock.Elapsed.TotalSeconds);
            }
            return true;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(
                $"glass-testpeer send: connection {index} to {Program.Format(endpoint)} failed during {stage}: "
                + Traffic.Failure(e, o.TimeoutSeconds, transfer, o.Bytes)
                + (stage == "transfer" ? $" (after {clock.Elapsed.TotalSeconds:F1} s)" : ""));
            return false;
        }
    }
}
