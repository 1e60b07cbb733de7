using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using Glass.Client;
using Glass.PowerShell.Jobs;

namespace Glass.PowerShell.Commands;

/// <summary>Completes from this session's Glass jobs; completion runs on the session's own thread.</summary>
public abstract class GlassJobCompleter : IArgumentCompleter
{
    private protected abstract IEnumerable<(string Value, string Tip)> Candidates(IEnumerable<GlassJob> jobs);

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        List<GlassJob> jobs;
        try
        {
            using var ps = System.Management.Automation.PowerShell.Create(RunspaceMode.CurrentRunspace);
            jobs = ps.AddCommand("Get-Job").Invoke<Job>().OfType<GlassJob>().ToList();
        }
        catch (Exception e) when (e is InvalidOperationException or PSInvalidOperationException)
        {
            jobs = [];
        }
        var prefix = wordToComplete.Trim('\'', '"');
        return Candidates(jobs)
            .Where(c => c.Value.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .DistinctBy(c => c.Value, StringComparer.OrdinalIgnoreCase)
            .Select(c => new CompletionResult(c.Value, c.Value, CompletionResultType.ParameterValue, c.Tip))
            .ToList();
    }
}

/// <summary>Channel ids of this session's bindings and forwarded ports, then those this user bound before.</summary>
public sealed class ChannelIdCompleter : GlassJobCompleter
{
    private protected override IEnumerable<(string, string)> Candidates(IEnumerable<GlassJob> jobs)
    {
        var live = jobs.Select(j => j switch
        {
            GlassBindingJob b => (b.ChannelId, $"{b.Name}: bound to {b.LocalTarget}"),
            GlassChannelJob c => (c.ChannelId, $"{c.Name}: forwarded from local port {c.LocalPort}"),
            _ => default,
        }).Where(c => c.Item1 is not null);
        IEnumerable<string> remembered;
        try
        {
            remembered = new ChannelStore().List().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            remembered = [];
        }
        return live.Concat(remembered.Select(id => (id, "bound by this user before (its secret is kept)")));
    }
}

/// <summary>Queue numbers of this session's translators.</summary>
public sealed class QueueCompleter : GlassJobCompleter
{
    private protected override IEnumerable<(string, string)> Candidates(IEnumerable<GlassJob> jobs) =>
        jobs.OfType<GlassTranslatorJob>().Select(t => (t.Queue.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{t.Name}: {t.JobStateInfo.State}, ports {t.PortRange}"));
}

/// <summary>Ports of this session's controllers.</summary>
public sealed class ControllerPortCompleter : GlassJobCompleter
{
    private protected override IEnumerable<(string, string)> Candidates(IEnumerable<GlassJob> jobs) =>
        jobs.OfType<GlassControllerJob>().Where(c => c.EndPoint is not null)
            .Select(c => (c.EndPoint!.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{c.Name}: {c.JobStateInfo.State}"));
}
