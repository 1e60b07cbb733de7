// glass-impair: delays and reorders the packets of one NFQUEUE queue, for tests that need a
// network worse than a veth pair on a kernel without netem.
//
// Every queued packet's verdict is held back and given (NF_ACCEPT) later; the kernel lets verdicts
// come in any order, so a packet held longer than the ones behind it is overtaken by them. One
// thread does everything: it receives queued packets, keeps the held ones in a priority queue
// ordered by due time, and issues the verdicts that have fallen due.

using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Glass.Interop;

namespace Glass.Impair;

internal static class Program
{
    private const string Usage = """
        glass-impair: holds back the packets of an NFQUEUE queue to delay and reorder them.

        Usage:
          glass-impair --queue N [--delay-ms D] [--jitter-ms J] [--reorder-percent R]
                       [--seed S] [--max-held H]
          glass-impair --help

        Binds NFQUEUE queue N (root), then accepts every queued packet after D ms plus a uniform
        random 0..J ms (defaults 0). Jitter keeps the packets' order: a packet is never released
        before one that arrived earlier, unless that earlier one was picked for reordering.
        R percent of the packets (default 0) are held an extra uniform D..2D ms (at least 1 ms),
        so that packets queued after them overtake them. At most H packets (default 4096) are
        held at once; a packet beyond that is accepted at once. S seeds the random choices
        (default: random; it is printed).

        Prints "glass-impair: queue N bound ..." on stdout once the queue is bound, so a caller
        can wait for it before sending packets to the queue. On SIGTERM or SIGINT it accepts
        every packet still held, prints one JSON summary line on stdout and exits 0:
          {"queue":N,"seed":S,"seen":n,"delayed":n,"reordered":n,"overtaken":n,"immediate":n,
           "overflow":n,"peakHeld":n,"verdictErrors":n,"queueDropped":n,"userDropped":n,"seconds":t}
        seen: packets received; delayed: held (reordered ones included); reordered: picked for
        the extra hold; overtaken: released after a packet that arrived later; immediate:
        accepted without a hold (zero delay, or H reached: overflow); peakHeld: most held at once;
        verdictErrors: verdicts the kernel refused (the packet was gone); queueDropped, userDropped:
        the kernel's counters for the queue (queue full; receive buffer full), packets lost on top
        of the requested impairment (null if /proc/net/netfilter/nfnetlink_queue is unreadable).

        Exit codes: 0 stopped by a signal, 1 a kernel failure, 2 bad arguments.
        """;

    private static int Main(string[] args)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.WriteLine(Usage);
            return 0;
        }

        ImpairOptions options;
        try
        {
            options = ImpairOptions.Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"glass-impair: {e.Message}");
            Console.Error.WriteLine("Run 'glass-impair --help' for usage.");
            return 2;
        }

        var impairer = new Impairer(options);
        // Handled (Cancel = true): the loop ends, releases what it holds and Main returns normally.
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; impairer.RequestStop(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; impairer.RequestStop(); });

        NfQueueSocket socket;
        try
        {
            // The kernel queue holds our held packets as well as those not yet received.
            var kernelQueueLength = (uint)Math.Min((long)options.MaxHeld + 16384, uint.MaxValue);
            socket = NfQueueSocket.Open(options.Queue, kernelQueueLength, receiveTimeoutMs: 100);
        }
        catch (Exception e) when (e is KernelException or TimeoutException)
        {
            Console.Error.WriteLine($"glass-impair: cannot bind NFQUEUE {options.Queue}: {e.Message}");
            return 1;
        }

        using (socket)
        {
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"glass-impair: queue {options.Queue} bound (delay {options.DelayMs} ms + 0..{options.JitterMs} ms, " +
                $"{options.ReorderPercent}% reordered, max held {options.MaxHeld}, seed {options.Seed})"));
            var rc = impairer.Run(socket);
            // Read while still bound: the kernel forgets the queue's counters on unbind.
            Console.Out.WriteLine(impairer.Summary(KernelQueueCounters.Read(options.Queue)));
            return rc;
        }
    }
}

internal sealed class UsageException(string message) : Exception(message);

internal sealed record ImpairOptions
{
    public ushort Queue { get; init; }
    public double DelayMs { get; init; }
    public double JitterMs { get; init; }
    public double ReorderPercent { get; init; }
    public int Seed { get; init; }
    public int MaxHeld { get; init; } = 4096;

    public static ImpairOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is not ("--queue" or "--delay-ms" or "--jitter-ms" or "--reorder-percent" or "--seed" or "--max-held"))
                throw new UsageException($"unknown argument '{name}'");
            if (i + 1 >= args.Length)
                throw new UsageException($"{name} needs a value");
            if (!values.TryAdd(name, args[++i]))
                throw new UsageException($"{name} given twice");
        }
        if (!values.TryGetValue("--queue", out var queueText))
            throw new UsageException("--queue is required");

        return new ImpairOptions
        {
            Queue = (ushort)ParseInt("--queue", queueText, 0, ushort.MaxValue),
            DelayMs = ParseDouble(values, "--delay-ms", 0, 60_000),
            JitterMs = ParseDouble(values, "--jitter-ms", 0, 60_000),
            ReorderPercent = ParseDouble(values, "--reorder-percent", 0, 100),
            Seed = values.TryGetValue("--seed", out var seed)
                ? ParseInt("--seed", seed, int.MinValue, int.MaxValue)
                : Random.Shared.Next(),
            MaxHeld = values.TryGetValue("--max-held", out var held) ? ParseInt("--max-held", held, 0, 1 << 24) : 4096,
        };
    }

    private static int ParseInt(string name, string text, long min, long max)
    {
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new UsageException($"{name} must be an integer in [{min}, {max}], not '{text}'");
        return (int)v;
    }

    private static double ParseDouble(Dictionary<string, string> values, string name, double min, double max)
    {
        if (!values.TryGetValue(name, out var text))
            return 0;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v >= min && v <= max))
            throw new UsageException($"{name} must be a number in [{min}, {max}], not '{text}'");
        return v;
    }
}

/// <summary>The receive / hold / release loop and its counters. Run on one thread.</summary>
internal sealed class Impairer
{
    private readonly ImpairOptions _options;
    private readonly Random _random;
    private readonly long _delayTicks;
    private readonly double _jitterTicks;
    private readonly long _extraTicks;
    // Held packets by due time, then arrival order (PriorityQueue is not stable, and in-order
    // packets often share a due time); Sequence also tells overtaken packets.
    private readonly PriorityQueue<(uint Id, long Sequence), (long Due, long Sequence)> _held = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private volatile bool _stop;
    private NfQueueSocket? _socket;
    private long _fifoDue;
    private long _maxReleasedSequence;

    private long _seen, _delayed, _reordered, _overtaken, _immediate, _overflow, _verdictErrors;
    private int _peakHeld;

    public Impairer(ImpairOptions options)
    {
        _options = options;
        _random = new Random(options.Seed);
        _delayTicks = MsToTicks(options.DelayMs);
        _jitterTicks = MsToTicks(options.JitterMs);
        _extraTicks = MsToTicks(Math.Max(options.DelayMs, 1));
    }

    private static long MsToTicks(double ms) => (long)(ms * Stopwatch.Frequency / 1000);

    public void RequestStop() => _stop = true;

    public int Run(NfQueueSocket socket)
    {
        _socket = socket;
        var buffer = new byte[NfQueueSocket.ReceiveBufferSize];
        try
        {
            while (!_stop)
            {
                // Nothing held: block until a packet comes (or the receive timeout, to see _stop).
                // Something held: never block past its due time; poll, and nap 1 ms when idle.
                var received = 0;
                var n = socket.Receive(buffer, dontWait: _held.Count > 0);
                while (n > 0)
                {
                    HandleDatagram(buffer.AsSpan(0, n), Stopwatch.GetTimestamp());
                    // Release what fell due even under a steady stream of arrivals.
                    if (++received == 64)
                        break;
                    n = socket.Receive(buffer, dontWait: true);
                }
                ReleaseDue(Stopwatch.GetTimestamp());
                if (received == 0 && _held.Count > 0 && _held.TryPeek(out _, out var next) && next.Due > Stopwatch.GetTimestamp())
                    Thread.Sleep(1);
            }
            ReleaseAll(socket, buffer);
            return 0;
        }
        catch (KernelException e)
        {
            Console.Error.WriteLine($"glass-impair: {e.Message}");
            try
            {
                ReleaseAll(socket, buffer);
            }
            catch (KernelException)
            {
                // Closing the socket ends the queue anyway.
            }
            return 1;
        }
    }

    /// <summary>On the way out: accept what is waiting in the socket and everything held.</summary>
    private void ReleaseAll(NfQueueSocket socket, byte[] buffer)
    {
        for (var pass = 0; pass < 2; pass++)
        {
            int n;
            while ((n = socket.Receive(buffer, dontWait: true)) > 0)
                HandleDatagram(buffer.AsSpan(0, n), Stopwatch.GetTimestamp());
            ReleaseDue(long.MaxValue);
        }
    }

    private void HandleDatagram(ReadOnlySpan<byte> datagram, long now)
    {
        var offset = 0;
        while (NfQueueMessages.TryReadMessage(datagram.Slice(offset), out var type, out var message, out var consumed))
        {
            if (NfQueueMessages.TryReadPacket(message, out var id, out _, out _, out _))
                Hold(id, now);
            else if (type == NfQueueMessages.NLMSG_ERROR && NfQueueMessages.TryReadError(message, out var errno) && errno != 0)
                _verdictErrors++; // a verdict for a packet the kernel no longer had
            offset += consumed;
        }
    }

    private void Hold(uint id, long now)
    {
        var sequence = ++_seen;
        if (_held.Count >= _options.MaxHeld)
        {
            _overflow++;
            _immediate++;
            Accept(id, sequence);
            return;
        }

        var due = now + _delayTicks + (long)(_random.NextDouble() * _jitterTicks);
        if (_options.ReorderPercent > 0 && _random.NextDouble() * 100 < _options.ReorderPercent)
        {
            // Held past the packets behind it; leaves the in-order release times alone.
            _reordered++;
            due += _extraTicks + (long)(_random.NextDouble() * _extraTicks);
        }
        else
        {
            // Jitter without reordering: not before the packet released in order before this one.
            due = Math.Max(due, _fifoDue);
            _fifoDue = due;
        }

        if (due <= now)
        {
            _immediate++;
            Accept(id, sequence);
            return;
        }
        _delayed++;
        _held.Enqueue((id, sequence), (due, sequence));
        if (_held.Count > _peakHeld)
            _peakHeld = _held.Count;
    }

    private void ReleaseDue(long now)
    {
        while (_held.TryPeek(out var packet, out var key) && key.Due <= now)
        {
            _held.Dequeue();
            Accept(packet.Id, packet.Sequence);
        }
    }

    private void Accept(uint id, long sequence)
    {
        if (sequence < _maxReleasedSequence)
            _overtaken++;
        else
            _maxReleasedSequence = sequence;
        try
        {
            _socket!.Verdict(id, NfQueueMessages.NF_ACCEPT);
        }
        catch (KernelException)
        {
            _verdictErrors++;
        }
    }

    public string Summary(KernelQueueCounters? kernel) => string.Create(CultureInfo.InvariantCulture,
        $$"""{"queue":{{_options.Queue}},"seed":{{_options.Seed}},"seen":{{_seen}},"delayed":{{_delayed}},"reordered":{{_reordered}},"overtaken":{{_overtaken}},"immediate":{{_immediate}},"overflow":{{_overflow}},"peakHeld":{{_peakHeld}},"verdictErrors":{{_verdictErrors}},"queueDropped":{{Json(kernel?.QueueDropped)}},"userDropped":{{Json(kernel?.UserDropped)}},"seconds":{{_clock.Elapsed.TotalSeconds:F1}}}""");

    private static string Json(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "null";
}

/// <summary>
/// The kernel's own counters for a queue, from /proc/net/netfilter/nfnetlink_queue (of the
/// reader's network namespace): packets it dropped because the queue was full (queue_dropped) or
/// because it could not hand them to the socket (user_dropped, a full receive buffer). Either
/// is loss on top of what was asked for.
/// </summary>
internal sealed record KernelQueueCounters(long QueueDropped, long UserDropped)
{
    public static KernelQueueCounters? Read(ushort queue)
    {
        try
        {
            // queue_number peer_portid queue_total copy_mode copy_range queue_dropped user_dropped id_sequence 1
            foreach (var line in File.ReadLines("/proc/net/netfilter/nfnetlink_queue"))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length >= 7 && f[0] == queue.ToString(CultureInfo.InvariantCulture)
                    && long.TryParse(f[5], CultureInfo.InvariantCulture, out var queueDropped)
                    && long.TryParse(f[6], CultureInfo.InvariantCulture, out var userDropped))
                    return new KernelQueueCounters(queueDropped, userDropped);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }
}
