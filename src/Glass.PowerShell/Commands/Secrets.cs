using System.Management.Automation;
using System.Net;
using System.Security;

namespace Glass.PowerShell.Commands;

/// <summary>
/// Takes a SecureString, or a plain string (typed, or from a vault that returns text), for a
/// secret parameter, so -Token (Get-Secret GlassToken) and -Token hunter2 both work. Secrets are
/// 1 to 64 characters on the wire (docs/protocol.md); an empty one clears a saved value where
/// <see cref="AllowEmpty"/> says so.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class SecretTransformationAttribute : ArgumentTransformationAttribute
{
    public bool AllowEmpty { get; init; }

    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        var secure = value switch
        {
            null => null,
            SecureString s => s,
            string text => Secure(text),
            PSCredential c => c.Password,
            _ => throw new ArgumentTransformationMetadataException($"A secret is a SecureString or a string, not a {value.GetType().Name}."),
        };
        if (secure is not null && (secure.Length > 64 || secure.Length == 0 && !AllowEmpty))
            throw new ArgumentTransformationMetadataException($"A secret is 1 to 64 characters; this one has {secure.Length}.");
        return secure;
    }

    private static SecureString Secure(string text)
    {
        var s = new SecureString();
        foreach (var c in text)
            s.AppendChar(c);
        s.MakeReadOnly();
        return s;
    }
}

internal static class Secrets
{
    /// <summary>The text of a secret, for the wire; null stays null.</summary>
    public static string? Plain(SecureString? secret) =>
        secret is null ? null : new NetworkCredential(string.Empty, secret).Password;

    /// <summary>
    /// The command line a job shows as its Command: the cmdlet and its bound parameters, with
    /// every secret masked (the typed line would show them to Get-Job | Format-List).
    /// </summary>
    public static string JobCommand(InvocationInfo invocation)
    {
        var parts = new List<string> { invocation.MyCommand.Name };
        foreach (var (name, value) in invocation.BoundParameters)
        {
            parts.Add(value switch
            {
                SwitchParameter { IsPresent: true } => $"-{name}",
                SwitchParameter => $"-{name}:$false",
                SecureString or PSCredential => $"-{name} ********",
                string s when s.Length == 0 || s.Any(char.IsWhiteSpace) => $"-{name} '{s.Replace("'", "''", StringComparison.Ordinal)}'",
                System.Collections.IEnumerable e and not string => $"-{name} {string.Join(',', e.Cast<object>())}",
                _ => $"-{name} {value}",
            });
        }
        return string.Join(' ', parts);
    }
}
