using Glass.Translator;
using System.Globalization;
using System.Net;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Glass.Config;

/// <summary>
/// A router's YAML configuration (examples/router.yaml). Every key is optional; parameters given to
/// a cmdlet override the file. Absent values are null here, so callers know what the file said.
/// </summary>
public sealed record RouterConfig
{
    public ushort? Queue { get; init; }
    public PortRange? PortRange { get; init; }
    public string? ControlSocket { get; init; }
    public IPAddress? ControllerAddress { get; init; }
    public int? ControllerPort { get; init; }
    /// <summary>controller.registry: the durable channel registry's file, or "memory" for none.</summary>
    public string? Registry { get; init; }
    public TimeSpan? PendingTimeout { get; init; }
    public TimeSpan? IdleTimeout { get; init; }
    public TimeSpan? TimeWait { get; init; }
    public TimeSpan? LeaseTime { get; init; }
    public string? BindToken { get; init; }
    public string? ConnectToken { get; init; }
    public int? MaxBindingsPerAddress { get; init; }
    public int? MaxLinksPerAddress { get; init; }
    public int? MaxConnectionsPerAddress { get; init; }
    public int? ConnectRatePerAddress { get; init; }
    public int? MaxSessions { get; init; }
    public OffloadMode? Offload { get; init; }
    public bool? KeepSessions { get; init; }
    public bool? FailOpen { get; init; }
    /// <summary>Where Prometheus scrapes the router: metrics.address (default 127.0.0.1) and metrics.port.</summary>
    public IPAddress? MetricsAddress { get; init; }
    public int? MetricsPort { get; init; }
    /// <summary>tls.certificate: the router's PEM certificate (with its key unless tls.key), generated there when missing.</summary>
    public string? TlsCertificate { get; init; }
    /// <summary>tls.key: the certificate's private key in its own PEM file.</summary>
    public string? TlsKey { get; init; }
    /// <summary>tls.allowPlaintext: also serve plain GLASS/1 and the binary BIND/CONN (unauthenticated).</summary>
    public bool? AllowPlaintext { get; init; }

    private static readonly string[] TopKeys = { "queue", "portRange", "controlSocket", "offload", "keepSessions", "failOpen", "controller", "timeouts", "access", "limits", "metrics", "tls" };
    private static readonly string[] ControllerKeys = { "address", "port", "registry" };
    private static readonly string[] MetricsKeys = { "address", "port" };
    private static readonly string[] TlsKeys = { "certificate", "key", "allowPlaintext" };
    private static readonly string[] TimeoutKeys = { "pending", "idle", "timeWait", "lease" };
    private static readonly string[] AccessKeys = { "bindToken", "connectToken" };
    private static readonly string[] LimitKeys = { "bindingsPerAddress", "linksPerAddress", "connectRatePerAddress", "connectionsPerAddress", "sessions" };
    private static readonly (string Name, string[] Keys)[] Sections =
        { ("controller", ControllerKeys), ("timeouts", TimeoutKeys), ("access", AccessKeys), ("limits", LimitKeys), ("metrics", MetricsKeys), ("tls", TlsKeys) };

    /// <summary>
    /// Every key a router file may hold, a section's keys dotted ("controller.port"), from the
    /// lists the parser checks keys against: what about_Glass_Configuration must document.
    /// </summary>
    public static IReadOnlyList<string> KeyNames { get; } = TopKeys
        .SelectMany(top => Sections.FirstOrDefault(s => s.Name == top).Keys?.Select(k => $"{top}.{k}") ?? new[] { top })
        .ToArray();

    public static RouterConfig Load(string path) => Parse(YamlReading.ReadFile(path)!, path);

    public static RouterConfig Parse(string text, string path)
    {
        if (YamlReading.Root(text, path) is not { } root)
            return new RouterConfig();

        var config = new RouterConfig();
        foreach (var (keyNode, value) in root.Children)
        {
            var key = Key(path, keyNode, TopKeys, "");
            config = key switch
            {
                "queue" => config with { Queue = (ushort)Integer(path, key, value, 0, 65535) },
                "portRange" => config with { PortRange = Range(path, key, value) },
                "controlSocket" => config with { ControlSocket = Scalar(path, key, value) },
                "offload" => config with { Offload = ParseOffload(path, value) },
                "keepSessions" => config with { KeepSessions = Boolean(path, key, value) },
                "failOpen" => config with { FailOpen = Boolean(path, key, value) },
                "controller" => Controller(path, config, value),
                "metrics" => Metrics(path, config, value),
                "access" => Access(path, config, value),
                "limits" => Limits(path, config, value),
                "tls" => Tls(path, config, value),
                _ => Timeouts(path, config, value),
            };
        }
        return config;
    }

    private static OffloadMode ParseOffload(string path, YamlNode node)
    {
        var s = Scalar(path, "offload", node);
        return s switch
        {
            "kernel" => OffloadMode.Kernel,
            "none" => OffloadMode.None,
            _ => throw new ConfigException(path, node, "offload", $"'offload' must be 'kernel' or 'none', not '{s}'"),
        };
    }

    private static RouterConfig Controller(string path, RouterConfig config, YamlNode node)
    {
        foreach (var (keyNode, value) in Mapping(path, "controller", node).Children)
        {
            var key = Key(path, keyNode, ControllerKeys, "controller.");
            if (key == "address")
                config = config with { ControllerAddress = Address(path, "controller.address", value) };
            else if (key == "registry")
                config = config with { Registry = Scalar(path, "controller.registry", value) };
            else
            {
                config = config with { ControllerPort = Integer(path, "controller.port", value, 1, 65535) };
            }
        }
        return config;
    }

    private static RouterConfig Metrics(string path, RouterConfig config, YamlNode node)
    {
        foreach (var (keyNode, value) in Mapping(path, "metrics", node).Children)
        {
            var key = Key(path, keyNode, MetricsKeys, "metrics.");
            config = key == "address"
                ? config with { MetricsAddress = Address(path, "metrics.address", value) }
                : config with { MetricsPort = Integer(path, "metrics.port", value, 1, 65535) };
        }
        return config;
    }

    private static RouterConfig Tls(string path, RouterConfig config, YamlNode node)
    {
        foreach (var (keyNode, value) in Mapping(path, "tls", node).Children)
        {
            var key = Key(path, keyNode, TlsKeys, "tls.");
            config = key switch
            {
                "certificate" => config with { TlsCertificate = Scalar(path, "tls.certificate", value) },
                "key" => config with { TlsKey = Scalar(path, "tls.key", value) },
                _ => config with { AllowPlaintext = Boolean(path, "tls.allowPlaintext", value) },
            };
        }
        if (config.TlsKey is not null && config.TlsCertificate is null)
            throw new ConfigException(path, node, "tls.key", "'tls.key' needs 'tls.certificate': the certificate that goes with the key");
        return config;
    }

    private static IPAddress Address(string path, string key, YamlNode node)
    {
        var s = Scalar(path, key, node);
        if (!IPAddress.TryParse(s, out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new ConfigException(path, node, key, $"'{key}' must be an IPv4 address, not '{s}'");
        return ip;
    }

    private static RouterConfig Timeouts(string path, RouterConfig config, YamlNode node)
    {
        foreach (var (keyNode, value) in Mapping(path, "timeouts", node).Children)
        {
            var key = Key(path, keyNode, TimeoutKeys, "timeouts.");
            var seconds = TimeSpan.FromSeconds(Integer(path, "timeouts." + key, value, 1, int.MaxValue));
            config = key switch
            {
                "pending" => config with { PendingTimeout = seconds },
                "idle" => config with { IdleTimeout = seconds },
                "lease" => config with { LeaseTime = seconds },
                _ => config with { TimeWait = seconds },
            };
        }
        return config;
    }

    private static RouterConfig Access(string path, RouterConfig config, YamlNode node)
    {
        foreach (var (keyNode, value) in Mapping(path, "access", node).Children)
        {
            var key = Key(path, keyNode, AccessKeys, "access.");
            var token = Scalar(path, "access." + key, value);
            if (token.Length > 64 || token.Any(c => c <= ' ' || c == '=' || c > '~'))
                throw new ConfigException(path, value, "access." + key, $"'access.{key}' must be 1 to 64 printable characters without spaces or '='");
            config = key == "bindToken" ? config with { BindToken = token } : config with { ConnectToken = token };
        }
        return config;
    }

    private static RouterConfig Limits(string path, RouterConfig config, YamlNode node)
    {
        foreach (var (keyNode, value) in Mapping(path, "limits", node).Children)
        {
            var key = Key(path, keyNode, LimitKeys, "limits.");
            var n = Integer(path, "limits." + key, value, 1, 1_000_000);
            config = key switch
            {
                "bindingsPerAddress" => config with { MaxBindingsPerAddress = n },
                "linksPerAddress" => config with { MaxLinksPerAddress = n },
                "connectionsPerAddress" => config with { MaxConnectionsPerAddress = n },
                "sessions" => config with { MaxSessions = n },
                _ => config with { ConnectRatePerAddress = n },
            };
        }
        return config;
    }

    private static string Key(string path, YamlNode node, string[] allowed, string prefix) => YamlReading.Key(path, node, allowed, prefix);

    private static YamlMappingNode Mapping(string path, string key, YamlNode node) => YamlReading.Mapping(path, key, node);

    private static string Scalar(string path, string key, YamlNode node) => YamlReading.Scalar(path, key, node);

    private static bool Boolean(string path, string key, YamlNode node)
    {
        var s = Scalar(path, key, node);
        return s switch
        {
            "true" => true,
            "false" => false,
            _ => throw new ConfigException(path, node, key, $"'{key}' must be true or false, not '{s}'"),
        };
    }

    private static int Integer(string path, string key, YamlNode node, int min, int max)
    {
        var s = Scalar(path, key, node);
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new ConfigException(path, node, key, $"'{key}' must be a whole number from {min} to {max}, not '{s}'");
        return v;
    }

    private static PortRange Range(string path, string key, YamlNode node)
    {
        var s = Scalar(path, key, node);
        return Glass.PortRange.TryParse(s, out var r, out var error) ? r.Value : throw new ConfigException(path, node, key, $"'{key}': {error}");
    }
}

/// <summary>A configuration file is wrong: names the file, the line, the key and what is wrong.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string path, int line, int column, string? key, string problem)
        : base(line > 0
            ? $"{path}:{line}:{column}: {problem}"
            : $"{path}: {problem}")
    {
        Path = path;
        Line = line;
        Key = key;
    }

    public ConfigException(string path, YamlNode node, string? key, string problem)
        : this(path, (int)node.Start.Line, (int)node.Start.Column, key, problem)
    {
    }

    public string Path { get; }
    public int Line { get; }
    public string? Key { get; }
}
