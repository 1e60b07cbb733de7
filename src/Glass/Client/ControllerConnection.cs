using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Glass.Controller;
using Glass.Protocol;

namespace Glass.Client;

/// <summary>The client's side of the controller protocol (docs/protocol.md).</summary>
public static class ControllerConnection
{
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A connection to the controller: inside TLS, the router's key checked against
    /// <paramref name="trust"/> before anything is sent, unless the trust says plain.
    /// </summary>
    internal static async Task<LineConnection> OpenAsync(IPEndPoint router, RouterTrust trust, CancellationToken ct, TimeSpan? patience = null)
    {
        Socket s;
        try
        {
            s = TcpSockets.Create(router.AddressFamily);
        }
        catch (SocketException e) when (TcpSockets.IsOutOfDescriptors(e))
        {
            throw new GlassException(GlassErrors.OutOfDescriptors, TcpSockets.OutOfDescriptors($"The glass controller at {router} cannot be asked"), e);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(patience ?? ReplyTimeout);
        try
        {
            await s.ConnectAsync(router, timeout.Token).ConfigureAwait(false);
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
        // Answers may carry a long error text; requests stay within the controller's 256 bytes.
        if (trust.Plaintext)
            return new LineConnection(s, 4096);
        var recorder = new HandshakeRecorder(new NetworkStream(s, ownsSocket: true));
        var tls = new SslStream(recorder);
        string? presented = null;
        var options = new SslClientAuthenticationOptions
        {
            // The name is not checked (the router's certificate is self-signed): the pin is the trust.
            TargetHost = "glass-router",
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                if (certificate is null)
                    return false;
                presented = RouterFingerprint.Of(certificate);
                return trust.Accept(presented);
            },
        };
        try
        {
            await tls.AuthenticateAsClientAsync(options, timeout.Token).ConfigureAwait(false);
            return new LineConnection(s, tls, 4096);
        }
        catch (AuthenticationException e) when (presented is not null && trust.Fingerprint is { } pinned && pinned != presented)
        {
            tls.Dispose();
            throw new GlassException(GlassErrors.RouterFingerprintMismatch,
                $"The router at {trust.Name} presented the key {presented}, but {pinned} is pinned for it (from {trust.PinSource}). Nothing was sent to it: "
                + "someone between you and the router may be impersonating it. If its key was replaced on purpose, pin the new one after checking it with the router's operator "
                + $"(Get-GlassRouterStatus there shows it): Set-GlassClientConfig -Router {trust.Name} -RouterFingerprint {presented}, or pass -RouterFingerprint {presented}.", e);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            tls.Dispose();
            // Refused before the handshake (over the connection limit), in plain words.
            if (recorder.PlainRefusal() is { } refusal)
                ParseAnswer(refusal, router);
            throw new GlassException(GlassErrors.ProtocolError,
                $"The controller at {router} did not complete a TLS handshake ({e.Message}). It may have refused the connection (too many from this address), "
                + "or be an older router that speaks only plain GLASS/1: only if you accept an unauthenticated channel that anyone on the path can read, use -Plaintext.", e);
        }
        catch
        {
            tls.Dispose();
            throw;
        }
    }

    /// <summary>Reads the answer to a request: the words after OK, or a <see cref="GlassException"/> for ERR.</summary>
    internal static async Task<string[]> ReadAnswerAsync(LineConnection conn, IPEndPoint router, CancellationToken ct, TimeSpan? patience = null) =>
        ParseAnswer(await ReadLineAsync(conn, router, ct, patience).ConfigureAwait(false), router);

    /// <summary>The answer line, or a protocol-error <see cref="GlassException"/> for a broken or closed connection.</summary>
    private static async Task<string> ReadLineAsync(LineConnection conn, IPEndPoint router, CancellationToken ct, TimeSpan? patience)
    {
        string? line;
        try
        {
            line = await conn.ReadLineAsync(patience ?? ReplyTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ProtocolException or SocketException or IOException)
        {
            throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} did not answer properly: {e.Message}", e);
        }
        return line ?? throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} closed the connection without an answer.");
    }

    /// <summary>Writes one request; a connection lost before it went out is a <see cref="GlassException"/> naming the controller.</summary>
    internal static async Task SendAsync(LineConnection conn, string request, IPEndPoint router, CancellationToken ct)
    {
        try
        {
            await conn.WriteLineAsync(request, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} closed the connection before the request went out: {e.Message}", e);
        }
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
    /// <param name="patience">How long to wait for the connection and for the answer; <see cref="ReplyTimeout"/> when null.</param>
    /// <param name="trust">How the router is authenticated; null: inside TLS, but any key accepted (nothing pinned).</param>
    public static async Task<IPEndPoint> RequestEndpointAsync(IPEndPoint router, string channelId, string? secret = null, string? token = null,
        CancellationToken ct = default, TimeSpan? patience = null, RouterTrust? trust = null)
    {
        var id = Normalize(channelId);
        // Over the process's session with this router: one round trip, no new TLS handshake.
        var session = ControllerSessionPool.Get(router, trust ?? RouterTrust.FirstUse(router.ToString()), token, patience ?? ReplyTimeout);
        var words = await session.RequestAsync(new ControllerRequest { Verb = ControllerVerb.Connect, ChannelId = id, Secret = secret }, ct).ConfigureAwait(false);
        return ParseEndpoint(words, router);
    }

    /// <summary>
    /// Asks a controller on this host for its counters. STATUS is answered on loopback only, and
    /// there in plain GLASS/1 whatever the router allows: it carries no secret.
    /// </summary>
    public static async Task<ControllerStatus> QueryStatusAsync(IPEndPoint controller, CancellationToken ct = default, TimeSpan? patience = null)
    {
        using var conn = await OpenAsync(controller, RouterTrust.Unencrypted(controller.ToString()), ct, patience).ConfigureAwait(false);
        await SendAsync(conn, new ControllerRequest { Verb = ControllerVerb.Status }.Format(), controller, ct).ConfigureAwait(false);
        var line = await ReadLineAsync(conn, controller, ct, patience).ConfigureAwait(false);
        if (!line.StartsWith("OK ", StringComparison.Ordinal))
        {
            ParseAnswer(line, controller); // throws a refusal as the error it names
            throw new GlassException(GlassErrors.ProtocolError, $"The controller at {controller} answered STATUS with '{line}'.");
        }
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<ControllerStatus>(line.AsSpan(3))
                ?? throw new GlassException(GlassErrors.ProtocolError, $"The controller at {controller} answered STATUS with null.");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new GlassException(GlassErrors.ProtocolError, $"The controller at {controller} answered STATUS with something other than its counters: {e.Message}", e);
        }
    }

    internal static IPEndPoint ParseEndpoint(string[] words, IPEndPoint router) =>
        words.Length == 2 && IPAddress.TryParse(words[0], out var addr) && ushort.TryParse(words[1], out var port)
            ? new IPEndPoint(addr, port)
            : throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} answered CONNECT with '{string.Join(' ', words)}'.");
}
