using System.Management.Automation;
using System.Net;
using Glass.Client;
using Glass.Config;

namespace Glass.PowerShell.Commands;

/// <summary>
/// What a client cmdlet uses where a parameter is not given: the router from -Router,
/// $env:GLASS_ROUTER or the client config, in that order; the token and the default secret from
/// the client config; how the router is authenticated from -RouterFingerprint, a pin in the client
/// config, or trust on first use (recorded there).
/// </summary>
internal sealed class ClientDefaults
{
    private string? _learnt;
    private Exception? _notRecorded;

    public const string RouterVariable = "GLASS_ROUTER";

    public required string Router { get; init; }
    /// <summary>Where <see cref="Router"/> came from, for -Verbose.</summary>
    public required string RouterSource { get; init; }
    public string? Token { get; init; }
    public string? Secret { get; init; }
    public required ClientConfig Config { get; init; }
    public required string ConfigPath { get; init; }

    /// <summary>
    /// How to authenticate the router at <paramref name="endpoint"/>: plain when asked for
    /// (-Plaintext or the config's plaintext), else pinned to -RouterFingerprint or to the pin
    /// in the client config, else trusted on first use and recorded in the client config. A
    /// router on loopback (this host) is not recorded: no network lies between, and test
    /// routers on ever-new ports would fill the file.
    /// </summary>
    public RouterTrust Trust(PSCmdlet cmdlet, IPEndPoint endpoint, string? fingerprint, bool plaintext)
    {
        var name = RouterEndpoint.Canonical(Router);
        if (plaintext || Config.Plaintext == true)
        {
            cmdlet.WriteVerbose($"Speaking plain GLASS/1 to {name} ({(plaintext ? "-Plaintext" : ConfigPath)}): unauthenticated, readable by anyone on the path.");
            return RouterTrust.Unencrypted(name);
        }
        if (fingerprint is not null)
            return RouterTrust.Pinned(name, fingerprint);
        if (Config.PinFor(Router) is { } pin)
        {
            cmdlet.WriteVerbose($"The router {name} must present {pin} (pinned in {ConfigPath}).");
            return RouterTrust.Pinned(name, pin, ConfigPath);
        }
        if (IPAddress.IsLoopback(endpoint.Address))
            return RouterTrust.FirstUse(name);
        var path = ConfigPath;
        return RouterTrust.FirstUse(name, presented =>
        {
            // On the handshake's thread: the cmdlet tells the user once the call returns (Reported).
            _learnt = presented;
            try
            {
                ClientConfig.RecordPin(path, name, presented);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ConfigException)
            {
                _notRecorded = e;
            }
        });
    }

    /// <summary>
    /// Warns of a key trusted on first use (once the connection that learnt it returned); with
    /// <paramref name="toStandardError"/> on standard error instead, where standard output carries
    /// a connection (-Stdio) and pwsh would print the warning into it.
    /// </summary>
    public void ReportFirstUse(PSCmdlet cmdlet, bool toStandardError = false)
    {
        if (Interlocked.Exchange(ref _learnt, null) is not { } learnt)
            return;
        var name = RouterEndpoint.Canonical(Router);
        var message = _notRecorded is null
            ? $"First connection to the router {name}: trusted its key {learnt} and pinned it in {ConfigPath}. Check it with the router's operator (Start-GlassController and Get-GlassRouterStatus show it there); a router presenting another key is refused from now on."
            : $"First connection to the router {name}: trusted its key {learnt} for this command, but could not pin it in {ConfigPath}: {_notRecorded.Message}";
        if (toStandardError)
            Console.Error.WriteLine("WARNING: " + message);
        else
            cmdlet.WriteWarning(message);
    }

    /// <summary>Resolves the settings, or stops the cmdlet with an error that names every way to give a router.</summary>
    public static ClientDefaults Resolve(PSCmdlet cmdlet, string? router, string? token, string? secret)
    {
        var path = ClientConfig.DefaultPath;
        ClientConfig config;
        try
        {
            config = ClientConfig.Load(path);
        }
        catch (ConfigException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "InvalidGlassConfig", ErrorCategory.InvalidData, path));
            throw; // unreachable
        }
        var env = Environment.GetEnvironmentVariable(RouterVariable);
        var (chosen, source) = !string.IsNullOrEmpty(router) ? (router, "-Router")
            : !string.IsNullOrEmpty(env) ? (env, $"$env:{RouterVariable}")
            : (config.Router, path);
        if (string.IsNullOrEmpty(chosen))
        {
            var e = new GlassException(GlassErrors.RouterMissing,
                $"No router given. Pass -Router HOST:PORT, set $env:{RouterVariable} = 'HOST:PORT', or save it once with Set-GlassClientConfig -Router HOST:PORT (kept in {path}).");
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, ErrorCategory.InvalidArgument, null));
        }
        cmdlet.WriteVerbose($"Router {chosen}, from {source}.");
        return new ClientDefaults { Router = chosen!, RouterSource = source, Token = token ?? config.Token, Secret = secret ?? config.Secret, Config = config, ConfigPath = path };
    }
}
