using System.Management.Automation;
using System.Text.Json;
using Glass.Translator;

namespace Glass.PowerShell.Commands;

/// <summary>Reads the translator's counters (packets relayed, drops by reason, sessions) over its control socket.</summary>
[Cmdlet(VerbsCommon.Get, "GlassTranslatorStatus")]
[OutputType(typeof(SpliceCounters))]
public sealed class GetGlassTranslatorStatusCommand : GlassCmdlet
{
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string ControlSocket { get; set; } = TranslatorOptions.DefaultControlSocket;

    protected override void EndProcessing()
    {
        if (CommandSupport.QueryTranslator(this, ControlSocket, "STATUS", Cancelled) is { } json)
            WriteObject(JsonSerializer.Deserialize<SpliceCounters>(json));
    }
}
