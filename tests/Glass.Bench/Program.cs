// glass-bench: measurements and a fuzz run for Glass's packet path (SpliceEngine and the parsers).
//
// bench reports every rate next to an anchor measured in the same process (copy + checksum of the
// same bytes), so the numbers compare across machines and CI runners; nothing fails on a timing.
// fuzz feeds seeded random and mutated datagrams through the parsers and a live engine and fails
// on an escaped exception or a broken invariant, printing the input in hex.

using System.Globalization;

namespace Glass.Bench;

internal static class Program
{
    private const string Usage = """
        glass-bench: SpliceEngine benchmarks and fuzzing.

        Usage:
          glass-bench bench [--seconds N]
          glass-bench fuzz  [--inputs N] [--seed S]
          glass-bench direct send|setups|hold --router ADDR:PORT --channel ID [options]
          glass-bench --help

        bench   Relay throughput (1448-byte segments of established sessions), handshakes
                (Link + 2 SYNs) and the drop path, each as a rate and as a ratio to an anchor
                measured in the same run: Span.CopyTo of the same datagram plus one full
                Checksum.Compute over it. Also bytes allocated per relayed packet (must be 0)
                and managed memory per session. N is the time of each measured phase
                (default 2; about 8.5 N + 8 seconds in all). Prints a table, then one JSON line.
                Short runs (N < 1) are for smoke tests: their ratios are noisy.
        fuzz    N inputs (default 1000000; suffixes K and M accepted) of random and mutated
                datagrams through TcpPacket.TryParse, TcpSynOptions.TryParse,
                TcpTimestamps.TryFind and SpliceEngine.Process, with links, unlinks, a fake
                clock and Sweep in between. Seed S (default 1) makes a run repeatable.
        direct  The end-to-end benchmark's load for an application that dials router endpoints
                itself: every connection first asks the controller (GLASS/1 CONNECT, as
                Connect-GlassChannel without -LocalPort does) for its own endpoint.
                  send   --connections K --bytes N [--seed S] [--digest sha256|xxh3]: K
                         concurrent streams of N bytes each, hashed both ways; one JSON line
                         per connection, as glass-testpeer send prints them (--bytes takes
                         K, M, G; the server's --digest must match).
                  setups --count C: C sequential setups (endpoint, connect, 1-byte echo,
                         close); one JSON line with ok, failed, perSecond, p50us, p99us,
                         machineCpuUs (the machine's busy CPU per setup, -1 if unknown).
                  hold   --connections N [--parallel P] [--ready-file PATH] [--seconds S]:
                         N connections each proven by a 1-byte echo, the ready file, then
                         holds until stdin closes (or S seconds), echoes once more on each and
                         prints {"role":"hold","connections":N,"ok":n,"failed":f}.
                All take --timeout SEC (default 120) for the whole run.

        Exit codes: 0 passed, 1 a violation (fuzz) or a harness or allocation check failed
        (bench), 2 bad arguments.
        """;

    private static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help" || args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        try
        {
            if (args[0] == "direct")
            {
                if (args.Length < 2)
                    throw new UsageException("direct needs a mode: send, setups or hold");
                return DirectPeer.Run(args[1], ParseOptions(args.AsSpan(2)));
            }
            var options = ParseOptions(args.AsSpan(1));
            switch (args[0])
            {
                case "bench":
                    Reject(options, "seconds");
                    var seconds = options.TryGetValue("seconds", out var s) ? ParseDouble("--seconds", s) : 2.0;
                    if (seconds <= 0 || seconds > 3600)
                        throw new UsageException("--seconds must be in (0, 3600]");
                    return Benchmarks.Run(seconds);
                case "fuzz":
                    Reject(options, "inputs", "seed");
                    var inputs = options.TryGetValue("inputs", out var n) ? ParseCount("--inputs", n) : 1_000_000;
                    var seed = options.TryGetValue("seed", out var seedText) ? ParseCount("--seed", seedText) : 1;
                    return new Fuzzer(seed, inputs).Run();
                default:
                    throw new UsageException($"unknown command '{args[0]}' (bench, fuzz or direct)");
            }
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"glass-bench: {e.Message}");
            Console.Error.WriteLine("Run 'glass-bench --help' for usage.");
            return 2;
        }
    }

    private static Dictionary<string, string> ParseOptions(ReadOnlySpan<string> args)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a.Length == 2)
                throw new UsageException($"unexpected argument '{a}'");
            string name, value;
            var eq = a.IndexOf('=');
            if (eq > 0)
            {
                name = a[2..eq];
                value = a[(eq + 1)..];
            }
            else
            {
                if (i + 1 >= args.Length)
                    throw new UsageException($"{a} needs a value");
                name = a[2..];
                value = args[++i];
            }
            if (!result.TryAdd(name, value))
                throw new UsageException($"--{name} given twice");
        }
        return result;
    }

    private static void Reject(Dictionary<string, string> options, params string[] known)
    {
        foreach (var name in options.Keys)
        {
            if (Array.IndexOf(known, name) < 0)
                throw new UsageException($"unknown option --{name}");
        }
    }

    private static double ParseDouble(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            ? v
            : throw new UsageException($"{name}: '{text}' is not a number");

    /// <summary>A non-negative integer; "_" and "," may group digits, K and M multiply by 1000 and 1000000.</summary>
    private static int ParseCount(string name, string text)
    {
        var t = text.Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        long scale = 1;
        if (t.EndsWith('k') || t.EndsWith('K'))
            (scale, t) = (1_000, t[..^1]);
        else if (t.EndsWith('m') || t.EndsWith('M'))
            (scale, t) = (1_000_000, t[..^1]);
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v * scale > int.MaxValue)
            throw new UsageException($"{name}: '{text}' is not a count");
        return (int)(v * scale);
    }
}

internal sealed class UsageException(string message) : Exception(message);
