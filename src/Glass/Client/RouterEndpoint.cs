using System.Net;
using System.Net.Sockets;

namespace Glass.Client;

/// <summary>Parses "HOST[:PORT]" into the controller's IPv4 endpoint (port 7000 when omitted).</summary>
public static class RouterEndpoint
{
    public const int DefaultPort = 7000;

    /// <summary>Whether <paramref name="text"/> reads as HOST or HOST:PORT (no lookup).</summary>
    public static bool IsWellFormed(string text)
    {
        var colon = text.LastIndexOf(':');
        var host = colon >= 0 ? text[..colon] : text;
        return host.Length > 0 && !text.Any(char.IsWhiteSpace)
            && (colon < 0 || int.TryParse(text.AsSpan(colon + 1), out var port) && port is >= 1 and <= 65535);
    }

    /// <summary>
    /// HOST:PORT as pins are kept under: the host in lowercase, the port always written (so
    /// "Router.example" and "router.example:7000" are one router).
    /// </summary>
    public static string Canonical(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon >= 0 && int.TryParse(text.AsSpan(colon + 1), out var port)
            ? $"{text[..colon].ToLowerInvariant()}:{port}"
            : $"{text.ToLowerInvariant()}:{DefaultPort}";
    }

    public static async Task<IPEndPoint> ResolveAsync(string text, CancellationToken ct = default)
    {
        var host = text;
        var port = DefaultPort;
        var colon = text.LastIndexOf(':');
        if (colon >= 0)
        {
            host = text[..colon];
            if (!int.TryParse(text.AsSpan(colon + 1), out port) || port is < 1 or > 65535)
                throw new GlassException(GlassErrors.BadRequest, $"'{text}' is not a router address; write HOST:PORT, e.g. 203.0.113.1:7000.");
        }
        if (host.Length == 0)
            throw new GlassException(GlassErrors.BadRequest, $"'{text}' names no router host; write HOST:PORT, e.g. 203.0.113.1:7000.");
        if (IPAddress.TryParse(host, out var ip))
            return new IPEndPoint(ip, port);
        try
        {
            foreach (var a in await Dns.GetHostAddressesAsync(host, AddressFamily.InterNetwork, ct).ConfigureAwait(false))
                return new IPEndPoint(a, port);
        }
        catch (SocketException e)
        {
            throw new GlassException(GlassErrors.RouterUnreachable, $"The router host '{host}' cannot be resolved: {e.Message}.", e);
        }
        throw new GlassException(GlassErrors.RouterUnreachable, $"The router host '{host}' has no IPv4 address.");
    }
}
