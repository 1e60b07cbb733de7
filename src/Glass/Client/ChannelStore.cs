namespace Glass.Client;

/// <summary>
/// Remembers the secrets of channels this user bound, so New-GlassBinding -ChannelId can claim
/// the same id again after a restart. One file per channel, readable by its owner only, under
/// $XDG_DATA_HOME/glass/channels (~/.local/share/glass/channels by default).
/// </summary>
public sealed class ChannelStore
{
    public ChannelStore(string? directory = null)
    {
        Directory = directory ?? Path.Combine(Config.XdgBase.Directory("XDG_DATA_HOME", Path.Combine(".local", "share")), "glass", "channels");
    }

    public string Directory { get; }

    public string? Load(string channelId)
    {
        var path = PathOf(channelId);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    public void Save(string channelId, string secret)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var path = PathOf(channelId);
        var temp = path + ".tmp";
        // Created owner-only before the secret is written into it.
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = new FileStream(temp, options))
        using (var w = new StreamWriter(f))
            w.Write(secret);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The channel ids whose secrets are kept here.</summary>
    public IEnumerable<string> List() =>
        System.IO.Directory.Exists(Directory)
            ? System.IO.Directory.EnumerateFiles(Directory).Select(f => Path.GetFileName(f)).Where(n => Controller.ChannelId.TryNormalize(n, out var id) && id == n)
            : [];

    private string PathOf(string channelId) =>
        Controller.ChannelId.TryNormalize(channelId, out var id)
            ? Path.Combine(Directory, id)
            : throw new GlassException(GlassErrors.BadRequest, $"'{channelId}' is not a channel id: expected 32 hex characters.");
}
