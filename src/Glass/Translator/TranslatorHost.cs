using Glass.Interop;

namespace Glass.Translator;

/// <summary>What a translator is started with.</summary>
public sealed record TranslatorOptions
{
    public const string DefaultControlSocket = "/run/glass/translator.sock";

    public ushort Queue { get; init; } = 6;
    public PortRange PortRange { get; init; } = PortRange.Default;
    public string ControlSocket { get; init; } = DefaultControlSocket;
    /// <summary>Leave the iptables rule to the operator.</summary>
    public bool SkipFirewall { get; init; }
    public SpliceOptions Splice { get; init; } = new();
    /// <summary>Who carries established sessions: the kernel (conntrack NAT entries) or this process.</summary>
    public OffloadMode Offload { get; init; } = OffloadMode.Kernel;
}

/// <summary>Where established sessions are relayed.</summary>
public enum OffloadMode
{
    /// <summary>Every segment goes through the translator's queue (the userspace path).</summary>
    None,
    /// <summary>After the handshake, a conntrack entry with SNAT and DNAT carries the flow in the kernel.</summary>
    Kernel,
}

/// <summary>
/// A running translator: the NFQUEUE rule, the queue and raw sockets, the packet loop on its own
/// thread, and the control socket. Stop (or Dispose) undoes all of it.
/// </summary>
public sealed class TranslatorHost : IDisposable
{
    private readonly TranslatorOptions _options;
    private readonly NfQueueRule _rule;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NfQueueSocket? _queue;
    private RawIpv4Socket? _raw;
    private TunDevice? _tun;
    private TunRules? _tunRules;
    private ControlServer? _control;
    private Thread? _thread;
    private volatile bool _stopping;
    private readonly object _stopGate = new();
    private bool _stopped;
    private bool _ruleInstalled;

    public TranslatorHost(TranslatorOptions options)
    {
        _options = options;
        _rule = new NfQueueRule(options.Queue, options.PortRange.First, options.PortRange.Last);
    }

    public TranslatorOptions Options => _options;
    public SpliceEngine? Engine { get; private set; }
    /// <summary>Datagrams the kernel refused to take from the translator (raw socket or tun device).</summary>
    public long RawSendErrors => (_raw?.SendErrors ?? 0) + (_tun?.SendErrors ?? 0);
    /// <summary>How relayed packets go back to the kernel, and why not through the tun device if not.</summary>
    public string SendPath { get; private set; } = "";
    private long _internalErrors;
    /// <summary>Packets whose handling threw (a bug); each was dropped and the loop went on.</summary>
    public long InternalErrors => Interlocked.Read(ref _internalErrors);
    public Exception? LastInternalError { get; private set; }

    /// <summary>Completes when the packet loop ends: normally after Stop, faulted if the kernel failed it.</summary>
    public Task Completion => _completion.Task;

    public void Start()
    {
        try
        {
            var sender = OpenSender();
            var splice = _options.Splice.MaxSegmentSize == 0
                ? _options.Splice with { MaxSegmentSize = SmallestLinkMss() }
                : _options.Splice;
            Engine = new SpliceEngine(sender, SystemClock.Instance, splice);
            // Whole GSO packets only when they can go back whole.
            _queue = NfQueueSocket.Open(_options.Queue, gso: _tun is not null);
            _control = new ControlServer(Engine, _options.ControlSocket);
            if (!_options.SkipFirewall)
            {
                _rule.Install();
                _ruleInstalled = true;
            }
            _control.Start();
            _thread = new Thread(Loop) { IsBackground = true, Name = $"glass-nfqueue-{_options.Queue}" };
            _thread.Start();
        }
        catch
        {
            Cleanup();
            throw;
        }
    }

    /// <summary>
    /// The tun device when the kernel lets us forward through it (GSO packets stay whole, one
    /// write each), else the raw socket (every packet MTU-sized, one sendto each, batched).
    /// </summary>
    private IPacketSender OpenSender()
    {
        var name = $"glass{_options.Queue}";
        try
        {
            _tun = TunDevice.Open(name);
            if (!_options.SkipFirewall)
            {
                _tunRules = new TunRules(name, _options.Queue);
                _tunRules.Install();
            }
            SendPath = $"tun {name}: whole GSO packets, partial checksums";
            return _tun;
        }
        catch (Exception e) when (e is KernelException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            _tunRules?.Remove();
            _tunRules = null;
            _tun?.Dispose();
            _tun = null;
            _raw = RawIpv4Socket.Open();
            SendPath = $"raw socket, packets segmented in the queue (no tun device: {e.Message})";
            return _raw;
        }
    }

    /// <summary>
    /// The MSS that fits every interface of this router that is up (MTU minus 40 bytes of IPv4
    /// and TCP headers), from /sys/class/net; 0 when none can be read.
    /// </summary>
    internal static ushort SmallestLinkMss(string sysClassNet = "/sys/class/net")
    {
        var smallest = int.MaxValue;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(sysClassNet))
            {
                if (Path.GetFileName(dir) == "lo")
                    continue;
                var state = Path.Combine(dir, "operstate");
                var mtu = Path.Combine(dir, "mtu");
                if (File.Exists(state) && File.ReadAllText(state).Trim() is "up" or "unknown"
                    && File.Exists(mtu) && int.TryParse(File.ReadAllText(mtu).Trim(), out var m) && m >= 576)
                    smallest = Math.Min(smallest, m);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return smallest == int.MaxValue ? (ushort)0 : (ushort)Math.Min(ushort.MaxValue, smallest - 40);
    }

    // Queued packets taken per recvmmsg; every slot holds the largest message (a 64 KiB datagram).
    private const int ReceiveSlots = 32;

    private void Loop()
    {
        var batch = new ReceiveBatch(ReceiveSlots, NfQueueSocket.ReceiveBufferSize);
        _raw?.BatchOnThisThread();
        var nextSweep = Environment.TickCount64 + 1000;
        try
        {
            while (!_stopping)
            {
                var n = _queue!.Receive(batch);
                if (n > 0)
                {
                    uint lastId = 0;
                    var any = false;
                    for (var i = 0; i < n; i++)
                        any |= HandleDatagram(batch[i], ref lastId);
                    // What we relayed goes out (the raw socket's in one sendmmsg); every queued
                    // packet is dropped, in one verdict.
                    _raw?.Flush();
                    if (any)
                        _queue.DropUpTo(lastId);
                }
                var now = Environment.TickCount64;
                if (now >= nextSweep)
                {
                    Engine!.Sweep();
                    nextSweep = now + 1000;
                }
            }
            _completion.TrySetResult();
        }
        catch (Exception e)
        {
            _completion.TrySetException(e);
        }
    }

    private bool HandleDatagram(Span<byte> datagram, ref uint lastId)
    {
        var any = false;
        var offset = 0;
        while (NfQueueMessages.TryReadMessage(datagram.Slice(offset), out _, out var message, out var consumed))
        {
            if (NfQueueMessages.TryReadPacket(message, out QueuedPacket p))
            {
                var info = new QueuedPacketInfo { ChecksumPartial = p.ChecksumPartial, Gso = p.Gso, Truncated = p.Truncated };
                try
                {
                    Engine!.Process(datagram.Slice(offset + p.PayloadOffset, p.PayloadLength), info);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A bug must cost one packet, never the router: count it and go on.
                    Interlocked.Increment(ref _internalErrors);
                    LastInternalError = e;
                }
                lastId = p.Id;
                any = true;
            }
            offset += consumed;
        }
        return any;
    }

    /// <summary>Stops the loop and undoes everything Start did. Safe to call from several threads (signals, exit).</summary>
    public void Stop()
    {
        // A second caller waits for the first to finish, so the process cannot exit mid-cleanup.
        lock (_stopGate)
        {
            if (_stopped)
                return;
            _stopping = true;
            _thread?.Join(TimeSpan.FromSeconds(5));
            Cleanup();
            _stopped = true;
            _completion.TrySetResult();
        }
    }

    private void Cleanup()
    {
        if (_ruleInstalled)
        {
            _rule.Remove();
            _ruleInstalled = false;
        }
        _control?.Dispose();
        _queue?.Dispose();
        _raw?.Dispose();
        _tunRules?.Remove();
        _tunRules = null;
        _tun?.Dispose();
    }

    public void Dispose() => Stop();
}
