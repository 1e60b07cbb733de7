using System.Net;
using System.Net.Sockets;
using Glass.Controller;
using Glass.Protocol;

namespace Glass.Client;

/// <summary>The client's side of the controller protocol (docs/protocol.md).</summary>
public static class ControllerConnection
{
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);

    internal static async Task<LineConnection> OpenAsync(IPEndPoint router, CancellationToken ct)
    {
        var s = TcpSockets.Create(router.AddressFamily);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ReplyTimeout);
        try
        {
            await s.ConnectAsync(router, timeout.Token).ConfigureAwait(false);
            // Answers may carry a long error text; requests stay within the controller's 256 bytes.
            return new LineConnection(s, 4096);
        }
        catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            s.Dispose();
            throw new GlassException(GlassErrors.RouterUnreachable, $"The glass controller at {router} cannot be reached: {e.Message}. Check -Router and that Start-GlassController runs there.", e);
        }
        catch
        {
            // Cancelled by the caller (Ctrl+C): the half-made connection must not outlive it.
            s.Dispose();
            throw;
        }
    }

    /// <summary>Reads the answer to a request: the words after OK, or a <see cref="GlassException"/> for ERR.</summary>
    internal static async Task<string[]> ReadAnswerAsync(LineConnection conn, IPEndPoint router, CancellationToken ct)
    {
        string? line;
        try
        {
            line = await conn.ReadLineAsync(ReplyTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or SocketException or IOException)
        {
            throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} did not answer properly: {e.Message}", e);
        }
        if (line is null)
            throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} closed the connection without an answer.");
        return ParseAnswer(line, router);
    }

    /// <summary>The words after OK, or a <see cref="GlassException"/> for ERR or anything else.</summary>
    internal static string[] ParseAnswer(string line, IPEndPoint router)
    {
        var f = line.Split(' ', 3);
        if (f[0] == "OK")
            return f.Length > 1 ? line[3..].Split(' ') : Array.Empty<string>();
        if (f[0] == "ERR" && f.Length >= 2)
            throw new GlassException(f[1], $"The router refused: {(f.Length > 2 ? f[2] : f[1])} ({f[1]}).");
        throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} sent an unexpected answer: '{line}'.");
    }

    internal static string Normalize(string channelId) =>
        ChannelId.TryNormalize(channelId, out var id)
            ? id
            : throw new GlassException(GlassErrors.UnknownChannel, $"'{channelId}' is not a channel id: expected 32 hex characters, as New-GlassBinding prints.");

    /// <summary>Asks for a fresh router endpoint for one connection to <paramref name="channelId"/>.</summary>
    public static async Task<IPEndPoint> RequestEndpointAsync(IPEndPoint router, string channelId, string? secret = null, string? token = null, CancellationToken ct = default)
    {
        var id = Normalize(channelId);
        using var conn = await OpenAsync(router, ct).ConfigureAwait(false);
        await conn.WriteLineAsync(new ControllerRequest { Verb = ControllerVerb.Connect, ChannelId = id, Secret = secret, Token = token }.Format(), ct).ConfigureAwait(false);
        return ParseEndpoint(await ReadAnswerAsync(conn, router, ct).ConfigureAwait(false), router);
    }

    internal static IPEndPoint ParseEndpoint(string[] words, IPEndPoint router) =>
        words.Length == 2 && IPAddress.TryParse(words[0], out var addr) && ushort.TryParse(words[1], out var port)
            ? new IPEndPoint(addr, port)
            : throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} answered CONNECT with '{string.Join(' ', words)}'.");
}
