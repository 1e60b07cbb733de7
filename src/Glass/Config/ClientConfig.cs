using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Glass.Config;

/// <summary>
/// A user's client settings (<c>$XDG_CONFIG_HOME/glass/client.yaml</c>, by default
/// <c>~/.config/glass/client.yaml</c>): the router the client cmdlets use when none is given,
/// the router's token, and a default channel secret. Every key is optional.
/// </summary>
public sealed record ClientConfig
{
    public string? Router { get; init; }
    public string? Token { get; init; }
    public string? Secret { get; init; }

    private static readonly string[] Keys = { "router", "token", "secret" };

    /// <summary>Every key a client settings file may hold: what about_Glass_Configuration must document.</summary>
    public static IReadOnlyList<string> KeyNames { get; } = Array.AsReadOnly(Keys);

    /// <summary>Where the client settings live for this user.</summary>
    public static string DefaultPath =>
        PathFor(Environment.GetEnvironmentVariable("XDG_CONFIG_HOME"), Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>The settings file for an XDG_CONFIG_HOME value (ignored unless absolute, as the XDG spec says) and a home folder.</summary>
    internal static string PathFor(string? xdgConfigHome, string home) =>
        Path.Combine(string.IsNullOrEmpty(xdgConfigHome) || !Path.IsPathRooted(xdgConfigHome) ? Path.Combine(home, ".config") : xdgConfigHome,
            "glass", "client.yaml");

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
            var s = YamlReading.Scalar(path, key, value);
            if (Check(key, s) is { } problem)
                throw new ConfigException(path, value, key, problem);
            config = key switch
            {
                "router" => config with { Router = s },
                "token" => config with { Token = s },
                _ => config with { Secret = s },
            };
        }
        return config;
    }

    /// <summary>What is wrong with a value for <paramref name="key"/>, or null.</summary>
    public static string? Check(string key, string value) => key switch
    {
        "router" when value.Length > 255 || value.Any(char.IsWhiteSpace) => $"'router' must be HOST or HOST:PORT, not '{value}'",
        // As the controller protocol carries them (docs/protocol.md).
        "token" or "secret" when value.Length is 0 or > 64 || value.Any(c => c <= ' ' || c == '=' || c > '~') =>
            $"'{key}' must be 1 to 64 printable characters without spaces or '='",
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
        var stream = new YamlStream(new YamlDocument(map));
        using var w = new StringWriter();
        stream.Save(w, assignAnchors: false);
        // YamlStream ends a document with "...": not wanted in a hand-edited file.
        var text = w.ToString().TrimEnd();
        if (text.EndsWith("...", StringComparison.Ordinal))
            text = text[..^3].TrimEnd();
        return "# Glass client settings (Set-GlassClientConfig). Keys: router, token, secret.\n" + (map.Children.Count == 0 ? "" : text + "\n");
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
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = new StreamWriter(temp, System.Text.Encoding.UTF8, options))
            f.Write(Format());
        File.Move(temp, path, overwrite: true);
    }
}
