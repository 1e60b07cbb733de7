using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Glass.Config;

/// <summary>
/// A user's client settings (<c>$XDG_CONFIG_HOME/glass/client.yaml</c>, by default
/// <c>~/.config/glass/client.yaml</c>): the router the client cmdlets use when none is given,
/// the router's token, a default channel secret, and the fingerprints routers are pinned to.
/// Every key is optional.
/// </summary>
public sealed record ClientConfig
{
    public string? Router { get; init; }
    public string? Token { get; init; }
    public string? Secret { get; init; }
    /// <summary>Speak plain GLASS/1 to every router (unauthenticated): for routers that allow nothing else.</summary>
    public bool? Plaintext { get; init; }
    /// <summary>The key fingerprint each router (HOST:PORT, as <see cref="Client.RouterEndpoint.Canonical"/> writes it) must present.</summary>
    public IReadOnlyDictionary<string, string> Routers { get; init; } = new SortedDictionary<string, string>(StringComparer.Ordinal);

    private static readonly string[] Keys = { "router", "token", "secret", "plaintext", "routers" };
    // Pins recorded by two cmdlets of one process at once must not write one temporary file.
    private static readonly object SaveGate = new();

    /// <summary>Every key a client settings file may hold: what about_Glass_Configuration must document.</summary>
    public static IReadOnlyList<string> KeyNames { get; } = Array.AsReadOnly(Keys);

    /// <summary>Where the client settings live for this user.</summary>
    public static string DefaultPath =>
        PathFor(Environment.GetEnvironmentVariable("XDG_CONFIG_HOME"), Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>The settings file for an XDG_CONFIG_HOME value (ignored unless absolute, as the XDG spec says) and a home folder.</summary>
    internal static string PathFor(string? xdgConfigHome, string home) =>
        Path.Combine(XdgBase.Directory(xdgConfigHome, home, ".config"), "glass", "client.yaml");

    /// <summary>The settings in <paramref name="path"/>; empty when the file does not exist.</summary>
    public static ClientConfig Load(string path) =>
        YamlReading.ReadFile(path, missingIsEmpty: true) is { } text ? Parse(text, path) : new ClientConfig();

    public static ClientConfig Parse(string text, string path)
    {
        if (YamlReading.Root(text, path) is not { } root)
            return new ClientConfig();
        var config = new ClientConfig();
        foreach (var (keyNode, value) in root.Children)
        {
            var key = YamlReading.Key(path, keyNode, Keys, "");
            if (key == "routers")
            {
                config = config with { Routers = ParseRouters(path, value) };
                continue;
            }
            var s = YamlReading.Scalar(path, key, value);
            if (Check(key, s) is { } problem)
                throw new ConfigException(path, value, key, problem);
            config = key switch
            {
                "router" => config with { Router = s },
                "token" => config with { Token = s },
                "plaintext" => config with { Plaintext = s == "true" },
                _ => config with { Secret = s },
            };
        }
        return config;
    }

    private static SortedDictionary<string, string> ParseRouters(string path, YamlNode node)
    {
        var pins = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in YamlReading.Mapping(path, "routers", node).Children)
        {
            var router = (keyNode as YamlScalarNode)?.Value;
            if (router is null || !Client.RouterEndpoint.IsWellFormed(router))
                throw new ConfigException(path, keyNode, "routers", $"'routers' maps HOST:PORT to a fingerprint; '{router}' is not HOST:PORT");
            var text = YamlReading.Scalar(path, $"routers.{router}", value);
            if (!Protocol.RouterFingerprint.TryNormalize(text, out var fingerprint))
                throw new ConfigException(path, value, $"routers.{router}", $"'routers.{router}' must be a fingerprint (sha256: and 64 hex characters), not '{text}'");
            pins[Client.RouterEndpoint.Canonical(router)] = fingerprint;
        }
        return pins;
    }

    // By value, pins included (a record compares its dictionary by reference).
    public bool Equals(ClientConfig? other) =>
        other is not null && Router == other.Router && Token == other.Token && Secret == other.Secret && Plaintext == other.Plaintext
        && Routers.Count == other.Routers.Count && Routers.All(p => other.Routers.TryGetValue(p.Key, out var f) && f == p.Value);

    public override int GetHashCode() => HashCode.Combine(Router, Token, Secret, Plaintext, Routers.Count);

    /// <summary>The fingerprint pinned for <paramref name="router"/> (HOST or HOST:PORT), or null.</summary>
    public string? PinFor(string router) => Routers.GetValueOrDefault(Client.RouterEndpoint.Canonical(router));

    /// <summary>These settings with <paramref name="router"/> pinned to <paramref name="fingerprint"/> (null removes the pin).</summary>
    public ClientConfig WithPin(string router, string? fingerprint)
    {
        var pins = new SortedDictionary<string, string>(Routers.ToDictionary(p => p.Key, p => p.Value), StringComparer.Ordinal);
        if (fingerprint is null)
            pins.Remove(Client.RouterEndpoint.Canonical(router));
        else
            pins[Client.RouterEndpoint.Canonical(router)] = Protocol.RouterFingerprint.Normalize(fingerprint);
        return this with { Routers = pins };
    }

    /// <summary>
    /// Records a pin learnt on first use in the file at <paramref name="path"/>, keeping whatever
    /// else it holds (read, changed and replaced in one step).
    /// </summary>
    public static void RecordPin(string path, string router, string fingerprint)
    {
        lock (SaveGate)
            Load(path).WithPin(router, fingerprint).Save(path);
    }

    /// <summary>What is wrong with a value for <paramref name="key"/>, or null.</summary>
    public static string? Check(string key, string value) => key switch
    {
        "router" when value.Length > 255 || value.Any(char.IsWhiteSpace) => $"'router' must be HOST or HOST:PORT, not '{value}'",
        // As the controller protocol carries them (docs/protocol.md).
        "token" or "secret" when value.Length is 0 or > 64 || value.Any(c => c <= ' ' || c == '=' || c > '~') =>
            $"'{key}' must be 1 to 64 printable characters without spaces or '='",
        "plaintext" when value is not ("true" or "false") => $"'plaintext' must be true or false, not '{value}'",
        _ => null,
    };

    /// <summary>The YAML text of these settings (values quoted where YAML needs it).</summary>
    public string Format()
    {
        var map = new YamlMappingNode();
        foreach (var (key, value) in new[] { ("router", Router), ("token", Token), ("secret", Secret) })
        {
            if (value is not null)
                map.Add(key, new YamlScalarNode(value) { Style = ScalarStyle.DoubleQuoted });
        }
        if (Plaintext is { } plain)
            map.Add("plaintext", plain ? "true" : "false");
        if (Routers.Count > 0)
        {
            var pins = new YamlMappingNode();
            foreach (var (router, fingerprint) in Routers.OrderBy(p => p.Key, StringComparer.Ordinal))
                pins.Add(new YamlScalarNode(router) { Style = ScalarStyle.DoubleQuoted }, new YamlScalarNode(fingerprint) { Style = ScalarStyle.DoubleQuoted });
            map.Add("routers", pins);
        }
        var stream = new YamlStream(new YamlDocument(map));
        using var w = new StringWriter();
        stream.Save(w, assignAnchors: false);
        // YamlStream ends a document with "...": not wanted in a hand-edited file.
        var text = w.ToString().TrimEnd();
        if (text.EndsWith("...", StringComparison.Ordinal))
            text = text[..^3].TrimEnd();
        return "# Glass client settings (Set-GlassClientConfig). Keys: router, token, secret, plaintext, routers (HOST:PORT: fingerprint).\n" + (map.Children.Count == 0 ? "" : text + "\n");
    }

    /// <summary>
    /// Writes the settings to <paramref name="path"/>, readable by this user only (it may hold a
    /// token and a secret), replacing the file in one step.
    /// </summary>
    public void Save(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(dir);
            else
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = new StreamWriter(temp, System.Text.Encoding.UTF8, options))
            f.Write(Format());
        File.Move(temp, path, overwrite: true);
    }
}
