using System.Management.Automation;
using Glass.Config;

namespace Glass.PowerShell.Commands;

/// <summary>What the cmdlets share: config loading and turning failures into ErrorRecords with stable ids.</summary>
internal static class CommandSupport
{
    /// <summary>What every channel id parameter takes, and what it says of anything else.</summary>
    public const string ChannelIdPattern = "^[0-9a-fA-F]{32}$";
    public const string ChannelIdMessage = "'{0}' is not a channel id: a channel id is 32 hex characters, as New-GlassBinding printed it.";

    public static RouterConfig LoadConfig(PSCmdlet cmdlet, string? path)
    {
        if (string.IsNullOrEmpty(path))
            return new RouterConfig();
        var full = cmdlet.GetUnresolvedProviderPathFromPSPath(path);
        try
        {
            return RouterConfig.Load(full);
        }
        catch (ConfigException e)
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(e, "InvalidGlassConfig", ErrorCategory.InvalidData, full));
            throw; // unreachable: ThrowTerminatingError throws
        }
    }

    /// <summary>
    /// Asks the translator on <paramref name="controlSocket"/> a STATUS or SESSIONS question;
    /// returns its JSON, or null after writing a non-terminating error (-ErrorAction decides).
    /// </summary>
    public static string? QueryTranslator(PSCmdlet cmdlet, string controlSocket, string command, CancellationToken ct)
    {
        var path = cmdlet.GetUnresolvedProviderPathFromPSPath(controlSocket);
        using var client = new Translator.TranslatorClient(path);
        try
        {
            return client.QueryAsync(command, ct).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (GlassException e)
        {
            cmdlet.WriteError(ToErrorRecord(e, path));
            return null;
        }
    }

    /// <summary>
    /// An address-in-use error, told which of this session's jobs holds <paramref name="port"/> (or
    /// that another program does); other errors as they are.
    /// </summary>
    public static Exception NameHolder(PSCmdlet cmdlet, GlassException e, int port)
    {
        if (e.ErrorId != GlassErrors.AddressInUse)
            return e;
        var holder = cmdlet.JobRepository.Jobs.OfType<Jobs.GlassJob>().FirstOrDefault(j =>
            j.JobStateInfo.State == JobState.Running
            && j switch
            {
                Jobs.GlassChannelJob c => c.LocalPort == port,
                Jobs.GlassControllerJob c => c.EndPoint?.Port == port,
                _ => false,
            });
        var fix = holder is not null
            ? $"This session's job {holder.Name} (Id {holder.Id}) holds it: stop it (Stop-Job -Id {holder.Id}) or pick another port."
            : "Another program or session holds it (ss -tlnp shows which): stop it or pick another port.";
        return new GlassException(e.ErrorId, $"{e.Message} {fix}", e);
    }

    public static bool Bound(PSCmdlet cmdlet, string parameter) => cmdlet.MyInvocation.BoundParameters.ContainsKey(parameter);

    public static PortRange ParseRange(PSCmdlet cmdlet, string text)
    {
        if (PortRange.TryParse(text, out var r, out var error))
            return r.Value;
        cmdlet.ThrowTerminatingError(new ErrorRecord(new ArgumentException(error), "InvalidPortRange", ErrorCategory.InvalidArgument, text));
        throw new InvalidOperationException();
    }

    public static ErrorRecord ToErrorRecord(Exception e, object? target)
    {
        if (e is AggregateException { InnerException: { } inner })
            e = inner;
        if (e is GlassException g)
        {
            var category = g.ErrorId switch
            {
                GlassErrors.UnknownChannel => ErrorCategory.ObjectNotFound,
                GlassErrors.RouterFull => ErrorCategory.LimitsExceeded,
                GlassErrors.TranslatorUnavailable or GlassErrors.BinderUnavailable => ErrorCategory.ResourceUnavailable,
                GlassErrors.RouterUnreachable => ErrorCategory.ConnectionError,
                GlassErrors.BadRequest or GlassErrors.RouterMissing => ErrorCategory.InvalidArgument,
                GlassErrors.Unauthorized or GlassErrors.PlaintextRefused => ErrorCategory.PermissionDenied,
                GlassErrors.RouterFingerprintMismatch => ErrorCategory.SecurityError,
                "tls-key-unavailable" => ErrorCategory.ReadError,
                GlassErrors.LimitExceeded => ErrorCategory.LimitsExceeded,
                GlassErrors.ChannelInUse or GlassErrors.AddressInUse => ErrorCategory.ResourceBusy,
                GlassErrors.RegistryUnavailable => ErrorCategory.ResourceUnavailable,
                GlassErrors.OutOfDescriptors => ErrorCategory.LimitsExceeded,
                "metrics-unavailable" => ErrorCategory.ResourceBusy,
                "listen-failed" => ErrorCategory.ResourceUnavailable,
                GlassErrors.ConfigMismatch => ErrorCategory.InvalidData,
                _ => ErrorCategory.ProtocolError,
            };
            return new ErrorRecord(g, g.ErrorId, category, target);
        }
        if (e is Interop.KernelException k)
            return new ErrorRecord(k, "KernelOperationFailed", k.Errno == 1 ? ErrorCategory.PermissionDenied : ErrorCategory.ResourceUnavailable, target);
        return new ErrorRecord(e, e.GetType().Name, ErrorCategory.NotSpecified, target);
    }
}
