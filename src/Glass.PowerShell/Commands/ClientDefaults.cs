using System.Management.Automation;
using Glass.Config;

namespace Glass.PowerShell.Commands;

/// <summary>
/// What a client cmdlet uses where a parameter is not given: the router from -Router,
/// $env:GLASS_ROUTER or the client config, in that order; the token and the default secret from
/// the client config.
/// </summary>
internal sealed class ClientDefaults
{
    public const string RouterVariable = "GLASS_ROUTER";

    public required string Router { get; init; }
    public string? Token { get; init; }
    public string? Secret { get; init; }

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
        var chosen = !string.IsNullOrEmpty(router) ? router
            : Environment.GetEnvironmentVariable(RouterVariable) is { Length: > 0 } fromEnv ? fromEnv
            : config.Router;
        if (string.IsNullOrEmpty(chosen))
        {
            var e = new GlassException(GlassErrors.RouterMissing,
                $"No router given. Pass -Router HOST:PORT, set $env:{RouterVariable} = 'HOST:PORT', or save it once with Set-GlassClientConfig -Router HOST:PORT (kept in {path}).");
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, e.ErrorId, ErrorCategory.InvalidArgument, null));
        }
        return new ClientDefaults { Router = chosen!, Token = token ?? config.Token, Secret = secret ?? config.Secret };
    }
}
