using System.Management.Automation;
using System.Text.Json;
using Glass.Translator;

namespace Glass.PowerShell.Commands;

/// <summary>Lists the translator's sessions, asking it over its control socket.</summary>
[Cmdlet(VerbsCommon.Get, "GlassSession")]
[OutputType(typeof(SessionInfo))]
public sealed class GetGlassSessionCommand : GlassCmdlet
{
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ControlSocket { get; set; } = TranslatorOptions.DefaultControlSocket;

    protected override void EndProcessing()
    {
        if (CommandSupport.QueryTranslator(this, ControlSocket, "SESSIONS", Cancelled) is not { } json)
            return;
        foreach (var s in JsonSerializer.Deserialize<List<SessionInfo>>(json) ?? new())
            WriteObject(s);
    }
}
