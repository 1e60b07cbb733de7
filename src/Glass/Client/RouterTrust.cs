using Glass.Protocol;

namespace Glass.Client;

/// <summary>
/// What a client trusts a router by: the fingerprint of its key, pinned (given, or recorded on
/// first use), or nothing at all for a router that speaks only plain GLASS/1. One instance serves
/// every connection to one router, so a key learnt on first use holds for the rest of its life
/// (a binding's reconnections included).
/// </summary>
public sealed class RouterTrust
{
    private readonly object _gate = new();
    private readonly Action<string>? _record;
    private string? _pin;

    private RouterTrust(string name, string? pin, string? source, bool plaintext, Action<string>? record)
    {
        Name = name;
        _pin = pin;
        PinSource = source;
        Plaintext = plaintext;
        _record = record;
    }

    /// <summary>The router as the user named it (HOST:PORT), for messages.</summary>
    public string Name { get; }

    /// <summary>Speak plain GLASS/1: unauthenticated, readable by anyone on the path.</summary>
    public bool Plaintext { get; }

    /// <summary>The fingerprint the router must present; null until first use learns it.</summary>
    public string? Fingerprint
    {
        get
        {
            lock (_gate)
                return _pin;
        }
    }

    /// <summary>Where the pin came from ("-RouterFingerprint", the client config's path, "first use").</summary>
    public string? PinSource { get; private set; }

    /// <summary>The router must present <paramref name="fingerprint"/>.</summary>
    public static RouterTrust Pinned(string name, string fingerprint, string source = "-RouterFingerprint") =>
        new(name, RouterFingerprint.Normalize(fingerprint), source, plaintext: false, null);

    /// <summary>
    /// Trust on first use: the first key presented is accepted and handed to
    /// <paramref name="record"/> (which keeps it for later runs); every later connection must
    /// present the same. Without a recorder, the pin lives as long as this instance.
    /// </summary>
    public static RouterTrust FirstUse(string name, Action<string>? record = null) =>
        new(name, null, null, plaintext: false, record);

    /// <summary>No TLS: for a router that only speaks plain GLASS/1, and for STATUS on loopback.</summary>
    public static RouterTrust Unencrypted(string name) => new(name, null, null, plaintext: true, null);

    /// <summary>Whether a router presenting <paramref name="presented"/> is this router; learns it on first use.</summary>
    internal bool Accept(string presented)
    {
        Action<string>? record;
        lock (_gate)
        {
            if (_pin is not null)
                return string.Equals(_pin, presented, StringComparison.Ordinal);
            _pin = presented;
            PinSource = "first use";
            record = _record;
        }
        // Outside the lock: recording writes a file.
        record?.Invoke(presented);
        return true;
    }
}
