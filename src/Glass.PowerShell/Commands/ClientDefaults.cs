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
    /// <summary>Where <see cref="Router"/> came from, for -Verbose.</summary>
    public required string RouterSource { get; init; }
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
        return new ClientDefaults { Router = chosen!, RouterSource = source, Token = token ?? config.Token, Secret = secret ?? config.Secret };
    }
}
