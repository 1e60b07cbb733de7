using Glass.Translator;
using static Glass.Interop.ConntrackMessages;

namespace Glass.Interop;

/// <summary>
/// The kernel side of offload: creates and deletes the translator's conntrack NAT entries over
/// ctnetlink, dumps them (adoption, counters), flushes them, and reads conntrack events. Every
/// entry it makes carries <see cref="Mark"/>, so a translator finds its own entries again after a
/// restart and never touches anyone else's.
/// </summary>
/// <remarks>
/// Three sockets, so no thread reads another's answers: commands (create, tighten, refresh, delete; used under the
/// engine's lock), dumps (the event thread), and events (multicast, the event thread).
/// </remarks>
internal sealed class ConntrackOffloader : IFlowOffloader, IDisposable
{
    // "GL" in the high half, the queue number in the low half: one translator's entries per queue.
    private const uint MarkTag = 0x474C_0000;

    private readonly NetfilterSocket _commands;
    private readonly NetfilterSocket _dumps;
    private readonly NetfilterSocket _events;
    private readonly byte[] _request = new byte[MaxRequestLength];
    private readonly byte[] _dumpRequest = new byte[MaxRequestLength];
    private readonly uint _timeoutSeconds;

    private ConntrackOffloader(NetfilterSocket commands, NetfilterSocket dumps, NetfilterSocket events, uint mark, uint timeoutSeconds)
    {
        _commands = commands;
        _dumps = dumps;
        _events = events;
        Mark = mark;
        _timeoutSeconds = timeoutSeconds;
    }

    public static uint MarkFor(ushort queue) => MarkTag | queue;

    public uint Mark { get; }

    /// <summary>Opens the sockets and proves ctnetlink answers (a dump of our own entries).</summary>
    public static ConntrackOffloader Open(ushort queue, TimeSpan entryTimeout)
    {
        var sockets = new List<NetfilterSocket>();
        try
        {
            var commands = Open(sockets, 0);
            var dumps = Open(sockets, 0);
            // NEW announces our own entries (made over the command socket, so not echoed to it);
            // UPDATE carries TCP state changes (FIN, RST); DESTROY the end of an entry.
            var events = Open(sockets, (1u << ((int)NFNLGRP_CONNTRACK_NEW - 1)) | (1u << ((int)NFNLGRP_CONNTRACK_UPDATE - 1)) | (1u << ((int)NFNLGRP_CONNTRACK_DESTROY - 1)), 4 << 20, 200);
            var timeout = (uint)Math.Clamp(entryTimeout.TotalSeconds, 1, int.MaxValue);
            var o = new ConntrackOffloader(commands, dumps, events, MarkFor(queue), timeout);
            var errno = o.Dump(static (in ConntrackEntry _) => { });
            if (errno != 0)
                throw new KernelException("dumping conntrack entries (ctnetlink)", errno, "The kernel may lack nf_conntrack_netlink.");
            return o;
        }
        catch
        {
            foreach (var s in sockets)
                s.Dispose();
            throw;
        }
    }

    private static NetfilterSocket Open(List<NetfilterSocket> opened, uint groups, int buffer = 1 << 20, int timeoutMs = 2000)
    {
        var s = NetfilterSocket.Open(groups, buffer, timeoutMs);
        opened.Add(s);
        return s;
    }

    public int Offload(in OffloadedFlow flow)
    {
        var n = WriteCreate(_request, _commands.NextSequence(), flow, Mark, _timeoutSeconds);
        var errno = _commands.Execute(_request.AsSpan(0, n));
        if (errno != Libc.EEXIST)
            return errno;
        // A stale entry of an earlier connection on the same 4-tuple (the SYN that opened this
        // session proved it gone): replace it once.
        Remove(flow.Original);
        n = WriteCreate(_request, _commands.NextSequence(), flow, Mark, _timeoutSeconds);
        return _commands.Execute(_request.AsSpan(0, n));
    }

    public int Tighten(in FlowTuple original)
    {
        var n = WriteTighten(_request, _commands.NextSequence(), original);
        return _commands.Execute(_request.AsSpan(0, n));
    }

    public int Refresh(in FlowTuple original)
    {
        var n = WriteRefresh(_request, _commands.NextSequence(), original, _timeoutSeconds);
        return _commands.Execute(_request.AsSpan(0, n));
    }

    public void Remove(in FlowTuple original)
    {
        var n = WriteDelete(_request, _commands.NextSequence(), original);
        _commands.Execute(_request.AsSpan(0, n));
    }

    /// <summary>Visits every entry carrying our mark; returns 0 or an errno. Event thread only.</summary>
    public int Dump(EntryHandler visit)
    {
        var n = WriteDumpByMark(_dumpRequest, _dumps.NextSequence(), Mark);
        return _dumps.Dump(_dumpRequest.AsSpan(0, n), message =>
        {
            if (TryReadEntry(message, out _, out var e) && e.Mark == Mark && e.Protocol == IPPROTO_TCP)
                visit(in e);
        });
    }

    /// <summary>
    /// Reads one entry of ours by its original tuple (a hash lookup, where a dump walks the whole
    /// table); returns 0, ENOENT when it is gone, or another errno. Event thread only.
    /// </summary>
    public int Read(in FlowTuple original, EntryHandler visit)
    {
        var n = WriteGet(_dumpRequest, _dumps.NextSequence(), original);
        return _dumps.Execute(_dumpRequest.AsSpan(0, n), message =>
        {
            if (TryReadEntry(message, out _, out var e) && e.Mark == Mark && e.Protocol == IPPROTO_TCP)
                visit(in e);
        });
    }

    /// <summary>Deletes every entry carrying our mark; returns 0 or an errno.</summary>
    public int Flush()
    {
        var n = WriteFlushByMark(_dumpRequest, _dumps.NextSequence(), Mark);
        var errno = _dumps.Execute(_dumpRequest.AsSpan(0, n));
        return errno == Libc.ENOENT ? 0 : errno;
    }

    /// <summary>
    /// Reads the next batch of events (waiting up to 200 ms) and hands ours to the handlers;
    /// returns false when events were lost (the caller reconciles with a dump).
    /// </summary>
    public bool ReadEvents(Span<byte> buffer, EntryHandler created, EntryHandler updated, EntryHandler destroyed)
    {
        var n = _events.Receive(buffer);
        while (n != 0)
        {
            if (n < 0)
                return false;
            var span = buffer.Slice(0, n);
            while (NfQueueMessages.TryReadMessage(span, out _, out var message, out var consumed))
            {
                span = span.Slice(consumed);
                if (!TryReadEntry(message, out var kind, out var e) || e.Mark != Mark || e.Protocol != IPPROTO_TCP)
                    continue;
                if (kind == IPCTNL_MSG_CT_DELETE)
                    destroyed(in e);
                else if (IsCreation(message))
                    created(in e);
                else
                    updated(in e);
            }
            n = _events.Receive(buffer, dontWait: true);
        }
        return true;
    }

    public void Dispose()
    {
        _commands.Dispose();
        _dumps.Dispose();
        _events.Dispose();
    }
}

internal delegate void EntryHandler(in ConntrackEntry entry);
