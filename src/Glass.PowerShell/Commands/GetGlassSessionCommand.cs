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
        foreach (var s in JsonSerializer.Deserialize<List<SessionInfo>>(CommandSupport.QueryTranslator(this, ControlSocket, "SESSIONS")) ?? new())
            WriteObject(s);
    }
}
