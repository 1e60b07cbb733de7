using System.Security.Cryptography;

namespace Glass.Controller;

/// <summary>
/// Hands out router ports per peer address: a (peer address, port) pair names one side of one link,
/// so two peers may share a port, but one address never gets a port it still holds.
/// Not thread-safe; the controller locks.
/// </summary>
/// <remarks>
/// Each port is drawn at random from the free ones. Whoever knows a peer's address and the port
/// it was given can race the peer's SYN with a forged one, so the next port must not be
/// guessable, not even by a client that watches the ports it is given itself (as it may, by
/// connecting to its own channels). Hence the operating system's cryptographic generator: a
/// seeded generator such as <see cref="Random.Shared"/> (xoshiro) can be reconstructed from
/// enough of its outputs. It costs well under a microsecond per draw, once per link side.
/// </remarks>
internal sealed class PortAllocator
{
    // Random draws before falling back to a scan: with a peer holding half the range, eight
    // draws all miss with probability 1/256, and then the scan from a random start still finds one.
    private const int Draws = 8;

    private readonly PortRange _range;
    private readonly Dictionary<uint, HashSet<ushort>> _used = new();

    public PortAllocator(PortRange range) => _range = range;

    public int InUse { get; private set; }

    public bool TryAllocate(uint peer, out ushort port)
    {
        if (!_used.TryGetValue(peer, out var held))
            _used[peer] = held = new HashSet<ushort>();
        var count = _range.Count;
        if (held.Count < count)
        {
            for (var i = 0; i < Draws; i++)
            {
                var candidate = (ushort)(_range.First + RandomNumberGenerator.GetInt32(count));
                if (held.Add(candidate))
                    return Allocated(candidate, out port);
            }
            var start = RandomNumberGenerator.GetInt32(count);
            for (var i = 0; i < count; i++)
            {
                var candidate = (ushort)(_range.First + (start + i) % count);
                if (held.Add(candidate))
                    return Allocated(candidate, out port);
            }
        }
        if (held.Count == 0)
            _used.Remove(peer);
        port = 0;
        return false;
    }

    private bool Allocated(ushort candidate, out ushort port)
    {
        InUse++;
        port = candidate;
        return true;
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
