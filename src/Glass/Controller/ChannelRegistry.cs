using System.Security.Cryptography;
using System.Text;
using Glass.Translator;

namespace Glass.Controller;

/// <summary>
/// Channel ids and their binders. An id is the hash of its binder's secret (<see cref="ChannelId"/>),
/// so only that secret binds it. A channel whose binder's control connection dropped stays leased
/// for <see cref="LeaseTime"/>, so connectors hear "temporarily unavailable" until the binder is
/// back; then it is forgotten. With a <see cref="RegistryStore"/>, channels and leases outlive a
/// controller restart. Not thread-safe: the controller locks.
/// </summary>
internal sealed class ChannelRegistry
{
    private readonly Dictionary<string, Channel> _channels = new();
    private readonly IClock _clock;
    private RegistryStore? _store;
    // Without a store: ids an owner bound since this start, which the prototype's BIND must never
    // take once their lease lapsed. Bounded: past the bound they are let go and every such BIND of
    // an id nobody holds is refused (the prototype's binders lose, never an owner).
    private readonly HashSet<string> _ownedThisRun = new();
    private bool _ownersForgotten;
    internal const int MaxOwnedThisRun = 100_000;
    // When the earliest lease can run out: lookups skip the scan until then.
    private long _nextExpiry = long.MaxValue;
    private bool _storeFailing;

    public ChannelRegistry(IClock clock, TimeSpan leaseTime)
    {
        _clock = clock;
        LeaseTime = leaseTime;
    }

    public TimeSpan LeaseTime { get; }

    /// <summary>A write to the durable store failed (once per run of failures): the registry goes on in memory.</summary>
    public event Action<string>? StoreProblem;

    /// <summary>Channels with a connected binder.</summary>
    public int Bound => _channels.Values.Count(c => c.Binder is not null);

    public int Count => _channels.Count;

    public int BoundFrom(uint address) => _channels.Values.Count(c => c.Binder is { } b && b.Peer == address);

    /// <summary>
    /// Takes channels from the durable store: those bound or leased when the last controller
    /// stopped come back as away, with what is left of their lease (a full one for those whose
    /// controller died while they were bound). Returns how many came back.
    /// </summary>
    public int Attach(RegistryStore store)
    {
        _store = store;
        var now = _clock.NowMilliseconds;
        var lease = (long)LeaseTime.TotalMilliseconds;
        var wallNow = store.Now;
        var count = 0;
        foreach (var row in store.Load())
        {
            var awayFor = row.State == StoredState.Away ? Math.Max(0, wallNow - row.ChangedAt) : 0;
            if (awayFor >= lease || _channels.ContainsKey(row.Id))
                continue;
            _channels[row.Id] = new Channel(row.Id, row.Legacy, row.ConnectSecretHash) { AwaySince = now - awayFor };
            _nextExpiry = Math.Min(_nextExpiry, now - awayFor + lease);
            count++;
        }
        return count;
    }

    /// <summary>Binds a fresh id (and secret), or with id and secret claims or reclaims that id.</summary>
    public BindResult Bind(string? id, string? secret, string? connectSecret, BinderInfo binder)
    {
        Expire();
        if (id is null)
        {
            do
            {
                secret = ChannelId.NewSecret();
                id = ChannelId.FromSecret(secret);
            }
            while (_channels.ContainsKey(id));
        }
        else if (!ChannelId.TryNormalize(id, out var normalized))
        {
            return BindResult.Fail(GlassErrors.BadRequest, $"'{id}' is not a channel id: expected 32 hex characters");
        }
        else
        {
            id = normalized;
            if (!ChannelId.IsOwnedBy(id, secret))
                return BindResult.Fail(GlassErrors.Unauthorized, $"this secret does not own channel {id}: an id is derived from its binder's secret");
            // An unauthenticated legacy claim never stands against the owner.
            if (_channels.TryGetValue(id, out var held) && !held.Legacy && held.Binder is not null)
                return BindResult.Fail(GlassErrors.ChannelInUse, $"channel {id} is already bound; stop the other binding first");
        }
        var channel = new Channel(id, legacy: false, connectSecret is null ? null : Hash(connectSecret)) { Binder = binder };
        _channels[id] = channel;
        Persist(channel, StoredState.Bound);
        if (_store is null && !_ownersForgotten && _ownedThisRun.Add(id) && _ownedThisRun.Count >= MaxOwnedThisRun)
        {
            _ownedThisRun.Clear();
            _ownersForgotten = true;
        }
        return BindResult.Ok(id, secret!);
    }

    /// <summary>
    /// The original design's BIND: no secret, so whoever knows an id nobody holds may bind it, but
    /// never one an owner bound within <see cref="RegistryStore.Retention"/> (or since this start).
    /// </summary>
    public BindResult BindLegacy(string id, BinderInfo binder)
    {
        Expire();
        if (_channels.TryGetValue(id, out var held))
        {
            if (!held.Legacy)
                return BindResult.Fail(GlassErrors.Unauthorized, $"channel {id} belongs to a binder with a secret");
            if (held.Binder is not null)
                return BindResult.Fail(GlassErrors.ChannelInUse, $"channel {id} is already bound");
        }
        else if (IsOwned(id))
        {
            return BindResult.Fail(GlassErrors.Unauthorized, $"channel {id} belongs to a binder with a secret");
        }
        var channel = new Channel(id, legacy: true, null) { Binder = binder };
        _channels[id] = channel;
        Persist(channel, StoredState.Bound);
        return BindResult.Ok(id, null);
    }

    /// <summary>The binder of <paramref name="id"/> went away: keep the lease, drop the connection.</summary>
    public void Detach(string id, BinderInfo binder)
    {
        if (_channels.TryGetValue(id, out var c) && ReferenceEquals(c.Binder, binder))
        {
            c.Binder = null;
            c.AwaySince = _clock.NowMilliseconds;
            _nextExpiry = Math.Min(_nextExpiry, c.AwaySince + (long)LeaseTime.TotalMilliseconds);
            Persist(c, StoredState.Away);
        }
    }

    /// <summary>The binder said goodbye: forget the channel at once, lease and all.</summary>
    public void Release(string id, BinderInfo binder)
    {
        if (_channels.TryGetValue(id, out var c) && ReferenceEquals(c.Binder, binder))
        {
            _channels.Remove(id);
            Persist(c, StoredState.Released);
        }
    }

    public Channel? Find(string id)
    {
        if (_clock.NowMilliseconds >= _nextExpiry)
            Expire();
        return ChannelId.TryNormalize(id, out var n) ? _channels.GetValueOrDefault(n) : null;
    }

    public static bool SecretsEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    /// <summary>Whether <paramref name="secret"/> is the connect secret <paramref name="channel"/> asks for (none asked: any).</summary>
    public static bool ConnectSecretMatches(Channel channel, string? secret) =>
        channel.ConnectSecretHash is not { } want
        || (secret is not null && CryptographicOperations.FixedTimeEquals(Hash(secret), want));

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

    /// <summary>The controller stops: every binder is away from now on, and the store is let go (returned, for disposal).</summary>
    public RegistryStore? Close()
    {
        foreach (var c in _channels.Values.Where(c => c.Binder is not null))
            Persist(c, StoredState.Away);
        var store = _store;
        _store = null;
        return store;
    }

    public IEnumerable<BinderInfo> Binders => _channels.Values.Where(c => c.Binder is not null).Select(c => c.Binder!);

    private bool IsOwned(string id)
    {
        try
        {
            return _store is null ? _ownersForgotten || _ownedThisRun.Contains(id) : _store.IsOwned(id);
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            // Unknown then: refuse, as the unauthenticated claim may be against an owner.
            StoreFailed(e);
            return true;
        }
    }

    private void Persist(Channel c, StoredState state)
    {
        if (_store is null)
            return;
        try
        {
            _store.Put(c.Id, c.Legacy, c.ConnectSecretHash, state);
            _storeFailing = false;
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            StoreFailed(e);
        }
    }

    private void StoreFailed(Exception e)
    {
        if (_storeFailing)
            return;
        _storeFailing = true;
        StoreProblem?.Invoke($"The channel registry {_store!.Path} cannot be written ({e.Message}); channels are kept in memory meanwhile and will not survive a restart.");
    }

    private static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    internal sealed class Channel
    {
        public Channel(string id, bool legacy, byte[]? connectSecretHash)
        {
            Id = id;
            Legacy = legacy;
            ConnectSecretHash = connectSecretHash;
        }

        public string Id { get; }
        /// <summary>Bound by the original design's BIND, without a secret.</summary>
        public bool Legacy { get; }
        /// <summary>SHA-256 of the secret connectors must present, or null for none.</summary>
        public byte[]? ConnectSecretHash { get; }
        public BinderInfo? Binder { get; set; }
        public long AwaySince { get; set; }
    }
}

/// <summary>A bound channel's control connection: how to push to it, its public address and the router address it reached.</summary>
internal sealed class BinderInfo
{
    public BinderInfo(Func<uint, ushort, bool, Task> push, uint peer, uint router)
    {
        Push = push;
        Peer = peer;
        Router = router;
    }

    /// <summary>Tells the binder to dial (router address, port), ahead of the connector when the flag is set.</summary>
    public Func<uint, ushort, bool, Task> Push { get; }
    public uint Peer { get; }
    public uint Router { get; }

    /// <summary>
    /// The binder said AHEAD: told of a link before the connector's SYN, it dials only the router
    /// and its local server once that dial completes (the connector's SYN has come).
    /// </summary>
    public volatile bool DialsAhead;
}

internal readonly record struct BindResult(bool Success, string? Id, string? Secret, string? ErrorCode, string? Message)
{
    public static BindResult Ok(string id, string? secret) => new(true, id, secret, null, null);
    public static BindResult Fail(string code, string message) => new(false, null, null, code, message);
}
