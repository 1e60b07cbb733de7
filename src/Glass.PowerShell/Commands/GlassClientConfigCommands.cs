using System.Management.Automation;
using Glass.Config;

namespace Glass.PowerShell.Commands;

/// <summary>A user's client settings as the cmdlets show them: the token and the secret are only said to be set.</summary>
public sealed class GlassClientSettings
{
    internal GlassClientSettings(string path, ClientConfig c)
    {
        Path = path;
        Router = c.Router;
        TokenSet = c.Token is not null;
        SecretSet = c.Secret is not null;
        Plaintext = c.Plaintext == true;
        Routers = c.Routers;
    }

    public string? Router { get; }
    public bool TokenSet { get; }
    public bool SecretSet { get; }
    /// <summary>Whether the client speaks plain GLASS/1 to every router (unauthenticated).</summary>
    public bool Plaintext { get; }
    /// <summary>The key fingerprint each router (HOST:PORT) is pinned to.</summary>
    public IReadOnlyDictionary<string, string> Routers { get; }
    public string Path { get; }
}

/// <summary>Shows the client settings New-GlassBinding and Connect-GlassChannel fall back on.</summary>
[Cmdlet(VerbsCommon.Get, "GlassClientConfig")]
[OutputType(typeof(GlassClientSettings))]
public sealed class GetGlassClientConfigCommand : PSCmdlet
{
    protected override void EndProcessing()
    {
        var path = ClientConfig.DefaultPath;
        try
        {
            WriteObject(new GlassClientSettings(path, ClientConfig.Load(path)));
        }
        catch (ConfigException e)
        {
            WriteError(new ErrorRecord(e, "InvalidGlassConfig", ErrorCategory.InvalidData, path));
        }
    }
}

/// <summary>
/// Saves the router, token and default secret the client cmdlets use when none is given, in
/// $XDG_CONFIG_HOME/glass/client.yaml (by default ~/.config/glass/client.yaml), readable by this
/// user only, and the fingerprint a router's key must have. An empty string removes a setting;
/// settings not named are kept.
/// </summary>
[Cmdlet(VerbsCommon.Set, "GlassClientConfig", SupportsShouldProcess = true)]
[OutputType(typeof(GlassClientSettings))]
public sealed class SetGlassClientConfigCommand : PSCmdlet
{
    /// <summary>The controller, as HOST:PORT (port 7000 when omitted).</summary>
    [Parameter(Position = 0)]
    [AllowEmptyString]
    public string? Router { get; set; }

    /// <summary>The router's token (its bind or connect token).</summary>
    [Parameter]
    [SecretTransformation(AllowEmpty = true)]
    public System.Security.SecureString? Token { get; set; }

    /// <summary>The default channel secret: -ConnectSecret of New-GlassBinding and -Secret of Connect-GlassChannel.</summary>
    [Parameter]
    [SecretTransformation(AllowEmpty = true)]
    public System.Security.SecureString? Secret { get; set; }

    /// <summary>Pins the router (-Router, else the saved one) to this key fingerprint; an empty string removes its pin.</summary>
    [Parameter]
    [AllowEmptyString]
    public string? RouterFingerprint { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void EndProcessing()
    {
        var path = ClientConfig.DefaultPath;
        ClientConfig config;
        try
        {
            config = ClientConfig.Load(path);
        }
        catch (ConfigException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, "InvalidGlassConfig", ErrorCategory.InvalidData, path));
            return;
        }
        config = config with
        {
            Router = Apply("router", Router, config.Router),
            Token = Apply("token", Secrets.Plain(Token), config.Token),
            Secret = Apply("secret", Secrets.Plain(Secret), config.Secret),
        };
        if (Router is { Length: > 0 } && !Client.RouterEndpoint.IsWellFormed(Router))
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{Router}' is not a router address; write HOST or HOST:PORT, e.g. 203.0.113.1:7000."),
                "InvalidRouter", ErrorCategory.InvalidArgument, Router));
        if (RouterFingerprint is not null)
        {
            if (string.IsNullOrEmpty(config.Router))
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("-RouterFingerprint pins the router named by -Router (or the saved one), and none is named."),
                    "RouterMissing", ErrorCategory.InvalidArgument, RouterFingerprint));
            if (RouterFingerprint.Length > 0 && !Protocol.RouterFingerprint.TryNormalize(RouterFingerprint, out _))
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"'{RouterFingerprint}' is not a router fingerprint: expected sha256: and 64 hex characters, as Get-GlassRouterStatus shows it on the router."),
                    "InvalidRouterFingerprint", ErrorCategory.InvalidArgument, RouterFingerprint));
            config = config.WithPin(config.Router!, RouterFingerprint.Length > 0 ? RouterFingerprint : null);
        }
        if (!ShouldProcess(path, "Save Glass client settings"))
            return;
        try
        {
            config.Save(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "ClientConfigNotSaved", ErrorCategory.WriteError, path));
        }
        if (PassThru)
            WriteObject(new GlassClientSettings(path, config));
    }

    private string? Apply(string key, string? given, string? current)
    {
        if (given is null)
            return current;
        if (given.Length == 0)
            return null;
        if (ClientConfig.Check(key, given) is { } problem)
            ThrowTerminatingError(new ErrorRecord(new ArgumentException(problem), "InvalidClientSetting", ErrorCategory.InvalidArgument, key));
        return given;
    }
}
