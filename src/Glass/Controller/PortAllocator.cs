namespace Glass.Controller;

/// <summary>
/// Hands out router ports per peer address: a (peer address, port) pair names one side of one link,
/// so two peers may share a port, but one address never gets a port it still holds.
/// A rotating cursor spreads successive links over the range. Not thread-safe; the controller locks.
/// </summary>
internal sealed class PortAllocator
{
    private readonly PortRange _range;
    private readonly Dictionary<uint, HashSet<ushort>> _used = new();
    private int _cursor;

    public PortAllocator(PortRange range) => _range = range;

    public int InUse { get; private set; }

    public bool TryAllocate(uint peer, out ushort port)
    {
        if (!_used.TryGetValue(peer, out var held))
            _used[peer] = held = new HashSet<ushort>();
        var count = _range.Count;
        for (var i = 0; i < count; i++)
        {
            var candidate = (ushort)(_range.First + (_cursor + i) % count);
            if (held.Add(candidate))
            {
                _cursor = (_cursor + i + 1) % count;
                InUse++;
                port = candidate;
                return true;
            }
        }
        if (held.Count == 0)
            _used.Remove(peer);
        port = 0;
        return false;
    }

    public bool Release(uint peer, ushort port)
    {
        if (!_used.TryGetValue(peer, out var held) || !held.Remove(port))
            return false;
        InUse--;
        if (held.Count == 0)
            _used.Remove(peer);
        return true;
    }

    public int CountFor(uint peer) => _used.TryGetValue(peer, out var held) ? held.Count : 0;
}
