using System.Security.Cryptography;

namespace Glass.Controller;

/// <summary>
/// Hands out router ports per peer address: a (peer address, port) pair names one side of one link,
/// so two peers may share a port, but one address never gets a port it still holds.
/// Each port remembers the link that holds it, so an event about a link that ended long ago
/// cannot free a port that a newer link holds now. Not thread-safe; the controller locks.
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
    // Port -> the translator's id of the link holding it; 0 until the link is made.
    private readonly Dictionary<uint, Dictionary<ushort, long>> _used = new();

    public PortAllocator(PortRange range) => _range = range;

    public int InUse { get; private set; }

    public bool TryAllocate(uint peer, out ushort port)
    {
        if (!_used.TryGetValue(peer, out var held))
            _used[peer] = held = new Dictionary<ushort, long>();
        var count = _range.Count;
        if (held.Count < count)
        {
            for (var i = 0; i < Draws; i++)
            {
                var candidate = (ushort)(_range.First + RandomNumberGenerator.GetInt32(count));
                if (held.TryAdd(candidate, 0))
                    return Allocated(candidate, out port);
            }
            var start = RandomNumberGenerator.GetInt32(count);
            for (var i = 0; i < count; i++)
            {
                var candidate = (ushort)(_range.First + (start + i) % count);
                if (held.TryAdd(candidate, 0))
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

    /// <summary>Names the link that holds an allocated port.</summary>
    public void Assign(uint peer, ushort port, long link)
    {
        if (_used.TryGetValue(peer, out var held) && held.ContainsKey(port))
            held[port] = link;
    }

    /// <summary>
    /// Frees a port if <paramref name="link"/> holds it; link 0 frees it whoever holds it (a
    /// port not yet assigned, or an event from a translator that sends no ids).
    /// </summary>
    public bool Release(uint peer, ushort port, long link = 0)
    {
        if (!_used.TryGetValue(peer, out var held) || !held.TryGetValue(port, out var holder)
            || (link != 0 && holder != link))
            return false;
        held.Remove(port);
        InUse--;
        if (held.Count == 0)
            _used.Remove(peer);
        return true;
    }

    public int CountFor(uint peer) => _used.TryGetValue(peer, out var held) ? held.Count : 0;
}
