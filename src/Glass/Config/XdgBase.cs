namespace Glass.Config;

/// <summary>
/// The XDG base directories (the XDG Base Directory specification): a variable's value when it is
/// an absolute path, else its default under the home folder. One place for the client settings,
/// the bound channels' secrets and the controller's state.
/// </summary>
internal static class XdgBase
{
    /// <summary>$<paramref name="variable"/>, or ~/<paramref name="defaultUnderHome"/>.</summary>
    public static string Directory(string variable, string defaultUnderHome) =>
        Directory(Environment.GetEnvironmentVariable(variable), Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), defaultUnderHome);

    /// <summary>A relative value is ignored, as the specification says.</summary>
    public static string Directory(string? value, string home, string defaultUnderHome) =>
        string.IsNullOrEmpty(value) || !Path.IsPathRooted(value) ? Path.Combine(home, defaultUnderHome) : value;
}
