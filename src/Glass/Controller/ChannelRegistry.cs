using System.Security.Cryptography;
using System.Text;
using Glass.Translator;

namespace Glass.Controller;

/// <summary>
/// Channel ids and their binders. A channel whose binder's control connection dropped stays
/// leased to its secret for <see cref="LeaseTime"/>, so the binder can come back with the same id
/// while connectors hear "temporarily unavailable"; then it is forgotten. Not thread-safe: the
/// controller locks.
/// </summary>
internal sealed class ChannelRegistry
{
    private readonly Dictionary<string, Channel> _channels = new();
    private readonly IClock _clock;
    // When the earliest lease can run out: lookups skip the scan until then.
    private long _nextExpiry = long.MaxValue;

    public ChannelRegistry(IClock clock, TimeSpan leaseTime)
    {
        _clock = clock;
        LeaseTime = leaseTime;
    }

    public TimeSpan LeaseTime { get; }

    /// <summary>Channels with a connected binder.</summary>
    public int Bound => _channels.Values.Count(c => c.Binder is not null);

    public int Count => _channels.Count;

    public int BoundFrom(uint address) => _channels.Values.Count(c => c.Binder is { } b && b.Peer == address);

    /// <summary>Binds a fresh id, or (with id and secret) claims or reclaims that id.</summary>
    public BindResult Bind(string? id, string? secret, string? connectSecret, BinderInfo binder)
    {
        Expire();
        if (id is null)
        {
            do
                id = ChannelId.New();
            while (_channels.ContainsKey(id));
            secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        }
        else if (!ChannelId.TryNormalize(id, out var normalized))
        {
            return BindResult.Fail(GlassErrors.BadRequest, $"'{id}' is not a channel id: expected 32 hex characters");
        }
        else
        {
            id = normalized;
            if (_channels.TryGetValue(id, out var held))
            {
                if (!SecretsEqual(held.Secret, secret!))
                    return BindResult.Fail(GlassErrors.Unauthorized, $"channel {id} is held by another binder (wrong secret)");
                if (held.Binder is not null)
                    return BindResult.Fail(GlassErrors.ChannelInUse, $"channel {id} is already bound; stop the other binding first");
            }
        }
        _channels[id] = new Channel(id, secret!, connectSecret) { Binder = binder };
        return BindResult.Ok(id, secret!);
    }

    /// <summary>The binder of <paramref name="id"/> went away: keep the lease, drop the connection.</summary>
    public void Detach(string id, BinderInfo binder)
    {
        if (_channels.TryGetValue(id, out var c) && ReferenceEquals(c.Binder, binder))
        {
            c.Binder = null;
            c.AwaySince = _clock.NowMilliseconds;
            _nextExpiry = Math.Min(_nextExpiry, c.AwaySince + (long)LeaseTime.TotalMilliseconds);
        }
    }

    /// <summary>The binder said goodbye: forget the channel at once, lease and all.</summary>
    public void Release(string id, BinderInfo binder)
    {
        if (_channels.TryGetValue(id, out var c) && ReferenceEquals(c.Binder, binder))
            _channels.Remove(id);
    }

    public Channel? Find(string id)
    {
        if (_clock.NowMilliseconds >= _nextExpiry)
            Expire();
        return ChannelId.TryNormalize(id, out var n) ? _channels.GetValueOrDefault(n) : null;
    }

    public static bool SecretsEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    /// <summary>Forgets channels whose binder has been away longer than the lease.</summary>
    public int Expire()
    {
        var now = _clock.NowMilliseconds;
        var lease = (long)LeaseTime.TotalMilliseconds;
        var gone = _channels.Values.Where(c => c.Binder is null && now - c.AwaySince >= lease).Select(c => c.Id).ToList();
        foreach (var id in gone)
            _channels.Remove(id);
        _nextExpiry = _channels.Values.Where(c => c.Binder is null).Select(c => c.AwaySince + lease).DefaultIfEmpty(long.MaxValue).Min();
        return gone.Count;
    }

    public IEnumerable<BinderInfo> Binders => _channels.Values.Where(c => c.Binder is not null).Select(c => c.Binder!);

    internal sealed class Channel
    {
        public Channel(string id, string secret, string? connectSecret)
        {
            Id = id;
            Secret = secret;
            ConnectSecret = connectSecret;
        }

        public string Id { get; }
        public string Secret { get; }
        public string? ConnectSecret { get; }
        public BinderInfo? Binder { get; set; }
        public long AwaySince { get; set; }
    }
}

/// <summary>A bound channel's control connection: how to push to it, its public address and the router address it reached.</summary>
internal sealed class BinderInfo
{
    public BinderInfo(Func<uint, ushort, Task> push, uint peer, uint router)
    {
        Push = push;
        Peer = peer;
        Router = router;
    }

    /// <summary>Tells the binder to dial (router address, port).</summary>
    public Func<uint, ushort, Task> Push { get; }
    public uint Peer { get; }
    public uint Router { get; }
}

internal readonly record struct BindResult(bool Success, string? Id, string? Secret, string? ErrorCode, string? Message)
{
    public static BindResult Ok(string id, string secret) => new(true, id, secret, null, null);
    public static BindResult Fail(string code, string message) => new(false, null, null, code, message);
}
