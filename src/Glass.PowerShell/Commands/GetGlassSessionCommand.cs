using System.Management.Automation;
using System.Text.Json;
using Glass.Translator;

namespace Glass.PowerShell.Commands;

/// <summary>Lists the translator's sessions, asking it over its control socket.</summary>
[Cmdlet(VerbsCommon.Get, "GlassSession")]
[OutputType(typeof(SessionInfo))]
public sealed class GetGlassSessionCommand : PSCmdlet
{
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ControlSocket { get; set; } = TranslatorOptions.DefaultControlSocket;

    protected override void EndProcessing()
    {
        using var client = new TranslatorClient(GetUnresolvedProviderPathFromPSPath(ControlSocket));
        try
        {
            var json = client.QueryAsync("SESSIONS").GetAwaiter().GetResult();
            foreach (var s in JsonSerializer.Deserialize<List<SessionInfo>>(json) ?? new())
                WriteObject(s);
        }
        catch (GlassException e)
        {
            ThrowTerminatingError(CommandSupport.ToErrorRecord(e, ControlSocket));
        }
    }
}
