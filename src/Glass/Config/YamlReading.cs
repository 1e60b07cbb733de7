using YamlDotNet.RepresentationModel;

namespace Glass.Config;

/// <summary>Reading YAML nodes for the config files; every problem names the file, line and key.</summary>
internal static class YamlReading
{
    public static string Key(string path, YamlNode node, string[] allowed, string prefix)
    {
        var key = (node as YamlScalarNode)?.Value;
        if (key is null || Array.IndexOf(allowed, key) < 0)
            throw new ConfigException(path, node, prefix + key,
                $"unknown key '{prefix}{key}'; expected one of: {string.Join(", ", allowed.Select(a => prefix + a))}");
        return key;
    }

    public static YamlMappingNode Mapping(string path, string key, YamlNode node) =>
        node as YamlMappingNode ?? throw new ConfigException(path, node, key, $"'{key}' must be a mapping of keys to values");

    public static string Scalar(string path, string key, YamlNode node) =>
        node is YamlScalarNode { Value: { Length: > 0 } v } ? v : throw new ConfigException(path, node, key, $"'{key}' needs a value");
}
