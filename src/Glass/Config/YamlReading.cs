using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Glass.Config;

/// <summary>Reading YAML nodes for the config files; every problem names the file, line and key.</summary>
internal static class YamlReading
{
    /// <summary>The text of a config file; null when it does not exist and that is allowed.</summary>
    public static string? ReadFile(string path, bool missingIsEmpty = false)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (missingIsEmpty && e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, 0, 0, null, $"cannot be read: {e.Message}");
        }
    }

    /// <summary>The file's top-level mapping; null for an empty file.</summary>
    public static YamlMappingNode? Root(string text, string path)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new ConfigException(path, (int)e.Start.Line, (int)e.Start.Column, null, $"not valid YAML: {e.Message}");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            return null;
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new ConfigException(path, stream.Documents[0].RootNode, null, "the file must be a mapping of keys to values");
    }

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
