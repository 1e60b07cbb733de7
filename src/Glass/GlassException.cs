namespace Glass;

/// <summary>
/// A failure a user sees: <see cref="ErrorId"/> is stable (the protocol's error code, which the
/// cmdlets use as the ErrorRecord id) and the message names the cause and, where there is one, the fix.
/// </summary>
public sealed class GlassException : Exception
{
    public GlassException(string errorId, string message, Exception? inner = null) : base(message, inner) => ErrorId = errorId;

    public string ErrorId { get; }
}

/// <summary>The control protocol's error codes (docs/protocol.md).</summary>
public static class GlassErrors
{
    public const string BadRequest = "bad-request";
    public const string UnknownChannel = "unknown-channel";
    public const string RouterFull = "router-full";
    public const string TranslatorUnavailable = "translator-unavailable";
    public const string BinderUnavailable = "binder-unavailable";
    public const string RouterUnreachable = "router-unreachable";
    public const string ProtocolError = "protocol-error";
    public const string Unauthorized = "unauthorized";
    public const string ChannelInUse = "channel-in-use";
    public const string LimitExceeded = "limit-exceeded";
    /// <summary>A client was given no router: no -Router, no $env:GLASS_ROUTER, nothing in its client config.</summary>
    public const string RouterMissing = "router-missing";
    /// <summary>A listener's port is taken by another listener (Glass's own or another program's).</summary>
    public const string AddressInUse = "address-in-use";
    /// <summary>Translator and controller disagree on the router's settings (its port range).</summary>
    public const string ConfigMismatch = "config-mismatch";
    /// <summary>The controller's durable channel registry cannot be opened or is of a newer schema.</summary>
    public const string RegistryUnavailable = "registry-unavailable";
    /// <summary>A client process ran out of file descriptors (its open-files limit).</summary>
    public const string OutOfDescriptors = "out-of-descriptors";
    /// <summary>A client spoke plain GLASS/1 (or the binary BIND/CONN) to a router that serves them only inside TLS.</summary>
    public const string PlaintextRefused = "plaintext-refused";
    /// <summary>The router presented another key than the one pinned for it: an impersonator, or a replaced key.</summary>
    public const string RouterFingerprintMismatch = "router-fingerprint-mismatch";
    /// <summary>A CANCEL named a router port that no pending link of its session holds.</summary>
    public const string NotFound = "not-found";
}
