// glass-forge: crafted TCP segments from a third host on the public segment, for the adversarial
// tests. "send" writes segments with any addresses, ports, flags and numbers through a raw socket
// (a spoofed SYN, a forged RST, a SYN flood from random sources); "sniff" reads the last segment
// of each flow of an address from a packet socket, for the attacks whose model lets the attacker
// see the flow.

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Glass.Interop;
using Glass.Packets;

namespace Glass.Forge;

internal static class Program
{
    private const string Usage = """
        glass-forge: sends crafted IPv4/TCP segments (root), or learns a flow's sequence numbers.

        Usage:
          glass-forge send  --src ADDRS --src-port PORTS --dst ADDR --dst-port PORTS
                            [--flags FLAGS] [--seq N|random] [--ack N] [--window W]
                            [--payload BYTES] [--count N] [--rate PPS] [--seed S]
          glass-forge sniff --host ADDR [--ports PORTS] [--quiet-ms Q] [--both-ways true]
                            [--timeout SEC]
          glass-forge --help

        send   Sends N segments (default 1) from a raw socket, at most PPS a second (default 0:
               as fast as the socket takes them). ADDRS is a comma-separated list of addresses
               or ranges (203.0.113.2, 198.51.100.1-198.51.100.254); PORTS a port or a range
               (60000-60099). Each segment takes a random source address, source port and
               destination port from those (seeded by S). FLAGS are letters of S (SYN), A (ACK),
               R (RST), F (FIN), P (PSH), U (URG), default S. --seq random draws each segment's
               sequence number; --ack (default 0), --window (default 65535) and --payload
               (bytes of zeros, default 0) as given. Numbers accept 0x hex. Prints one line
                 {"sent":n,"failed":f,"seconds":t}
        sniff  Watches every interface of its namespace (a packet socket) for TCP segments from
               or to ADDR (with a source or destination port in PORTS, when given), and once
               Q ms (default 1000) pass without one after the first (with --both-ways true:
               after segments of one flow in both directions, say a probe and its answer), prints
               one line per flow direction with its last segment:
                 {"src":"a:p","dst":"a:p","seq":n,"ack":n,"window":w,"flags":"A","length":l,"next":n}
               next is seq plus the segment's length (SYN and FIN count one). Exits 1 when no
               segment came within SEC seconds (default 30).

        Exit codes: 0 done, 1 a kernel failure or nothing sniffed, 2 bad arguments.
        """;

    private static int Main(string[] args)
    {
        if (args.Length == 0 || args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            var values = ParseOptions(args.AsSpan(1));
            return args[0] switch
            {
                "send" => Send(values),
                "sniff" => Sniff(values),
                _ => throw new UsageException($"unknown command '{args[0]}' (expected send or sniff)"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"glass-forge: {e.Message}");
            return 2;
        }
        catch (KernelException e)
        {
            Console.Error.WriteLine($"glass-forge: {e.Message}");
            return 1;
        }
    }

    private static int Send(Dictionary<string, string> o)
    {
        var sources = ParseAddresses(Required(o, "--src"));
        var (srcFirst, srcLast) = ParsePorts(Required(o, "--src-port"));
        var destination = ParseAddress(Required(o, "--dst"));
        var (dstFirst, dstLast) = ParsePorts(Required(o, "--dst-port"));
        var flags = ParseFlags(o.GetValueOrDefault("--flags", "S"));
        var randomSeq = o.GetValueOrDefault("--seq") == "random";
        var seq = randomSeq ? 0 : (uint)ParseNumber(o, "--seq", 0, uint.MaxValue, 0);
        var ack = (uint)ParseNumber(o, "--ack", 0, uint.MaxValue, 0);
        var window = (ushort)ParseNumber(o, "--window", 0, ushort.MaxValue, 65535);
        var payload = new byte[ParseNumber(o, "--payload", 0, 1400, 0)];
        var count = ParseNumber(o, "--count", 1, 100_000_000, 1);
        var rate = ParseNumber(o, "--rate", 0, 10_000_000, 0);
        var random = new Random((int)ParseNumber(o, "--seed", int.MinValue, int.MaxValue, 1));

        using var socket = RawIpv4Socket.Open();
        var packet = new byte[TcpSegmentBuilder.SegmentLength(payload.Length)];
        long sent = 0, failed = 0;
        var clock = Stopwatch.StartNew();
        for (long i = 0; i < count; i++)
        {
            if (rate > 0)
            {
                // Paced against the start, so a slow moment is made up for rather than lost.
                var due = i * 1000.0 / rate;
                while (clock.Elapsed.TotalMilliseconds < due)
                    Thread.Sleep(1);
            }
            var source = sources[random.Next(sources.Count)];
            var n = TcpSegmentBuilder.WriteSegment(packet, source.Pick(random), (ushort)random.Next(srcFirst, srcLast + 1),
                destination, (ushort)random.Next(dstFirst, dstLast + 1), randomSeq ? (uint)random.NextInt64(0, 1L << 32) : seq,
                ack, flags, window, payload);
            // A full socket buffer (a flood) waits a moment rather than losing the segment.
            var ok = false;
            for (var attempt = 0; attempt < 100 && !(ok = socket.Send(packet.AsSpan(0, n), destination)); attempt++)
                Thread.Sleep(1);
            if (ok)
                sent++;
            else
                failed++;
        }
        Console.Out.WriteLine(JsonSerializer.Serialize(new { sent, failed, seconds = Math.Round(clock.Elapsed.TotalSeconds, 3) }));
        return failed == 0 ? 0 : 1;
    }

    private static int Sniff(Dictionary<string, string> o)
    {
        var host = ParseAddress(Required(o, "--host"));
        var (portFirst, portLast) = o.TryGetValue("--ports", out var ports) ? ParsePorts(ports) : (0, ushort.MaxValue);
        var quietMs = ParseNumber(o, "--quiet-ms", 1, 600_000, 1000);
        var bothWays = o.GetValueOrDefault("--both-ways") == "true";
        var timeout = TimeSpan.FromSeconds(ParseNumber(o, "--timeout", 1, 3600, 30));
        using var capture = PacketCapture.Open();
        var buffer = new byte[65536];
        var last = new Dictionary<(uint, ushort, uint, ushort), Segment>();
        var clock = Stopwatch.StartNew();
        var lastSeen = TimeSpan.Zero;
        while (true)
        {
            var n = capture.TryReceive(buffer);
            if (n < 0)
                throw new KernelException("recv(AF_PACKET)", -n);
            if (n == 0)
            {
                var seen = bothWays ? last.Keys.Any(k => last.ContainsKey((k.Item3, k.Item4, k.Item1, k.Item2))) : last.Count > 0;
                if (seen && (clock.Elapsed - lastSeen).TotalMilliseconds >= quietMs)
                    break;
                if (!seen && clock.Elapsed >= timeout)
                {
                    Console.Error.WriteLine($"glass-forge: no TCP segment{(bothWays ? "s both ways" : "")} from or to {Ipv4.Format(host)} in {timeout.TotalSeconds} s");
                    return 1;
                }
                Thread.Sleep(1);
                continue;
            }
            if (!TcpPacket.TryParse(buffer.AsSpan(0, n), out var tcp) || (tcp.SourceAddress != host && tcp.DestinationAddress != host))
                continue;
            if ((tcp.SourcePort < portFirst || tcp.SourcePort > portLast) && (tcp.DestinationPort < portFirst || tcp.DestinationPort > portLast))
                continue;
            last[(tcp.SourceAddress, tcp.SourcePort, tcp.DestinationAddress, tcp.DestinationPort)] = new Segment(
                $"{Ipv4.Format(tcp.SourceAddress)}:{tcp.SourcePort}", $"{Ipv4.Format(tcp.DestinationAddress)}:{tcp.DestinationPort}",
                tcp.Sequence, tcp.Acknowledgment, tcp.Window, FormatFlags(tcp.Flags), tcp.PayloadLength, tcp.Sequence + tcp.SegmentLength);
            lastSeen = clock.Elapsed;
        }
        foreach (var s in last.Values)
            Console.Out.WriteLine(JsonSerializer.Serialize(s, JsonOptions));
        return 0;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private sealed record Segment(string Src, string Dst, uint Seq, uint Ack, ushort Window, string Flags, int Length, uint Next);

    private readonly record struct AddressRange(uint First, uint Last)
    {
        public uint Pick(Random r) => (uint)r.NextInt64(First, (long)Last + 1);
    }

    private static Dictionary<string, string> ParseOptions(ReadOnlySpan<string> args)
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new UsageException($"expected --option value pairs, got '{args[i]}'");
            values[args[i]] = args[i + 1];
        }
        return values;
    }

    private static string Required(Dictionary<string, string> o, string name) =>
        o.TryGetValue(name, out var v) ? v : throw new UsageException($"{name} is required");

    private static long ParseNumber(Dictionary<string, string> o, string name, long min, long max, long fallback)
    {
        if (!o.TryGetValue(name, out var text))
            return fallback;
        var ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v)
            : long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v);
        if (!ok || v < min || v > max)
            throw new UsageException($"{name} must be a number from {min} to {max}, got '{text}'");
        return v;
    }

    private static uint ParseAddress(string text) =>
        Ipv4.TryParse(text, out var a) ? a : throw new UsageException($"not an IPv4 address: '{text}'");

    private static List<AddressRange> ParseAddresses(string text)
    {
        var list = new List<AddressRange>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var ends = part.Split('-');
            var first = ParseAddress(ends[0]);
            var last = ends.Length == 2 ? ParseAddress(ends[1]) : first;
            if (ends.Length > 2 || last < first)
                throw new UsageException($"not an address range: '{part}'");
            list.Add(new AddressRange(first, last));
        }
        return list.Count > 0 ? list : throw new UsageException("--src names no address");
    }

    private static (int First, int Last) ParsePorts(string text)
    {
        var ends = text.Split('-');
        if (ends.Length > 2 || !ushort.TryParse(ends[0], out var first) || !ushort.TryParse(ends[^1], out var last) || last < first)
            throw new UsageException($"not a port or port range: '{text}'");
        return (first, last);
    }

    private static TcpFlags ParseFlags(string text)
    {
        var flags = TcpFlags.None;
        foreach (var c in text.ToUpperInvariant())
        {
            flags |= c switch
            {
                'S' => TcpFlags.Syn,
                'A' => TcpFlags.Ack,
                'R' => TcpFlags.Rst,
                'F' => TcpFlags.Fin,
                'P' => TcpFlags.Psh,
                'U' => TcpFlags.Urg,
                _ => throw new UsageException($"unknown flag '{c}' in '{text}' (S, A, R, F, P, U)"),
            };
        }
        return flags;
    }

    private static string FormatFlags(TcpFlags f) =>
        string.Concat((f & TcpFlags.Syn) != 0 ? "S" : "", (f & TcpFlags.Ack) != 0 ? "A" : "", (f & TcpFlags.Rst) != 0 ? "R" : "",
            (f & TcpFlags.Fin) != 0 ? "F" : "", (f & TcpFlags.Psh) != 0 ? "P" : "");

    private sealed class UsageException(string message) : Exception(message);
}
