using System.Diagnostics.CodeAnalysis;
using System.Text;
using Glass.Controller;

namespace Glass.Protocol;

public enum ControllerVerb
{
    Bind,
    Connect,
    Lookup,
    /// <summary>Counters, for the router's operator: answered only on loopback.</summary>
    Status,
    /// <summary>Keeps the connection open for any number of CONNECT, LOOKUP and CANCEL requests, answered in order.</summary>
    Session,
    /// <summary>In a session: the connector gave up on the router port a CONNECT of this session was answered with.</summary>
    Cancel,
}

/// <summary>
/// One controller request line (docs/protocol.md):
/// <code>
/// GLASS/1 BIND [id=ID secret=SECRET] [connect-secret=S] [token=T]
/// GLASS/1 CONNECT ID [secret=S] [token=T] [ahead=1]
/// GLASS/1 LOOKUP ID [token=T]
/// GLASS/1 STATUS
/// GLASS/1 SESSION [token=T]
/// GLASS/1 CANCEL PORT          (in a session only)
/// </code>
/// Values are printable ASCII without spaces or '='; unknown options are refused so typos fail loudly.
/// </summary>
public sealed record ControllerRequest
{
    public const string Version = "GLASS/1";
    public const int MaxValueLength = 64;

    public ControllerVerb Verb { get; init; }
    /// <summary>CONNECT and LOOKUP: the channel. BIND: the id to claim or reclaim, if any.</summary>
    public string? ChannelId { get; init; }
    /// <summary>BIND: the secret that owns <see cref="ChannelId"/>. CONNECT: the channel's connect secret.</summary>
    public string? Secret { get; init; }
    /// <summary>BIND: a secret connectors must present.</summary>
    public string? ConnectSecret { get; init; }
    /// <summary>The router's access token, where the router requires one.</summary>
    public string? Token { get; init; }
    /// <summary>CANCEL: the router port given up on.</summary>
    public ushort Port { get; init; }
    /// <summary>CONNECT: the endpoint is kept for a connection soon (a forwarder's spare): its binder may dial ahead.</summary>
    public bool Ahead { get; init; }

    public string Format()
    {
        var b = new StringBuilder(Version).Append(' ');
        switch (Verb)
        {
            case ControllerVerb.Bind:
                b.Append("BIND");
                if (ChannelId is not null)
                    b.Append(" id=").Append(ChannelId).Append(" secret=").Append(Secret);
                if (ConnectSecret is not null)
                    b.Append(" connect-secret=").Append(ConnectSecret);
                break;
            case ControllerVerb.Status:
                return b.Append("STATUS").ToString();
            case ControllerVerb.Session:
                b.Append("SESSION");
                break;
            case ControllerVerb.Cancel:
                return b.Append("CANCEL ").Append(Port).ToString();
            default:
                b.Append(Verb == ControllerVerb.Connect ? "CONNECT " : "LOOKUP ").Append(ChannelId);
                if (Secret is not null)
                    b.Append(" secret=").Append(Secret);
                if (Ahead && Verb == ControllerVerb.Connect)
                    b.Append(" ahead=1");
                break;
        }
        if (Token is not null)
            b.Append(" token=").Append(Token);
        return b.ToString();
    }

    /// <summary>Parses a request; on failure <paramref name="errorCode"/> is "version" or "bad-request" and <paramref name="error"/> says why.</summary>
    public static bool TryParse(string line, [NotNullWhen(true)] out ControllerRequest? request, out string errorCode, out string error)
    {
        request = null;
        errorCode = GlassErrors.BadRequest;
        error = "";
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 2 || !f[0].StartsWith("GLASS/", StringComparison.Ordinal))
        {
            error = "expected 'GLASS/1 BIND' or 'GLASS/1 CONNECT <channel-id>'";
            return false;
        }
        if (f[0] != Version)
        {
            errorCode = "version";
            error = $"this controller speaks {Version}, not {f[0]}";
            return false;
        }
        ControllerVerb verb;
        var next = 2;
        string? channel = null;
        switch (f[1])
        {
            case "BIND":
                verb = ControllerVerb.Bind;
                break;
            case "SESSION":
                verb = ControllerVerb.Session;
                break;
            case "STATUS" when f.Length == 2:
                request = new ControllerRequest { Verb = ControllerVerb.Status };
                return true;
            case "CANCEL" when f.Length == 3 && ushort.TryParse(f[2], System.Globalization.NumberStyles.None, null, out var port) && port != 0:
                request = new ControllerRequest { Verb = ControllerVerb.Cancel, Port = port };
                return true;
            case "CONNECT" or "LOOKUP" when f.Length >= 3:
                verb = f[1] == "CONNECT" ? ControllerVerb.Connect : ControllerVerb.Lookup;
                channel = f[2];
                next = 3;
                break;
            default:
                error = f[1] switch
                {
                    "CONNECT" or "LOOKUP" => $"{f[1]} needs a channel id",
                    "CANCEL" => "CANCEL needs one router port (1-65535) and nothing else",
                    _ => $"unknown request '{Truncate(f[1])}'",
                };
                return false;
        }
        string? secret = null, connectSecret = null, token = null;
        var ahead = false;
        for (var i = next; i < f.Length; i++)
        {
            var eq = f[i].IndexOf('=');
            var key = eq > 0 ? f[i][..eq] : f[i];
            var value = eq > 0 ? f[i][(eq + 1)..] : "";
            if (value.Length is 0 or > MaxValueLength || value.Contains('='))
            {
                error = $"option '{Truncate(key)}' needs a value of 1 to {MaxValueLength} characters";
                return false;
            }
            ref var slot = ref secret;
            switch (key)
            {
                case "id" when verb == ControllerVerb.Bind && channel is null:
                    channel = value;
                    continue;
                case "secret" when verb is ControllerVerb.Bind or ControllerVerb.Connect && secret is null:
                    break;
                case "connect-secret" when verb == ControllerVerb.Bind && connectSecret is null:
                    slot = ref connectSecret;
                    break;
                case "token" when token is null:
                    slot = ref token;
                    break;
                case "ahead" when verb == ControllerVerb.Connect && !ahead && value == "1":
                    ahead = true;
                    continue;
                default:
                    error = $"unknown or repeated option '{Truncate(key)}' for {f[1]}";
                    return false;
            }
            slot = value;
        }
        if (verb == ControllerVerb.Bind && (channel is null) != (secret is null))
        {
            error = "BIND names an id and its secret together, or neither";
            return false;
        }
        request = new ControllerRequest { Verb = verb, ChannelId = channel, Secret = secret, ConnectSecret = connectSecret, Token = token, Ahead = ahead };
        return true;
    }

    private static string Truncate(string s) => s.Length > 24 ? s[..24] + "..." : s;
}
