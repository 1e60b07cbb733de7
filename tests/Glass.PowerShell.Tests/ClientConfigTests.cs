using Glass.PowerShell.Commands;

namespace Glass.PowerShell.Tests;

/// <summary>Get-/Set-GlassClientConfig: what they output, and what lands in the user's file.</summary>
[Collection(HostedModuleCollection.Name)]
public sealed class ClientConfigTests(HostedModule module) : IDisposable
{
    public void Dispose()
    {
        if (File.Exists(module.ClientConfigPath))
            File.Delete(module.ClientConfigPath);
    }

    private Outcome Run(string name, Dictionary<string, object?>? parameters = null) => Hosted.Command(module.Shared, name, parameters);

    [Fact]
    public void GetGlassClientConfigShowsEmptySettingsAndWhereTheyWouldLive()
    {
        var shown = Assert.IsType<GlassClientSettings>(Assert.Single(Run("Get-GlassClientConfig").Succeeded().Objects));
        Assert.Null(shown.Router);
        Assert.False(shown.TokenSet);
        Assert.False(shown.SecretSet);
        Assert.Equal(module.ClientConfigPath, shown.Path);
    }

    [Fact]
    public void SetGlassClientConfigOutputsTheSettingsOnlyWithPassThru()
    {
        Assert.Empty(Run("Set-GlassClientConfig", new() { ["Router"] = "127.0.0.1:7100" }).Succeeded().Output);
        Assert.True(File.Exists(module.ClientConfigPath));

        var passed = Assert.IsType<GlassClientSettings>(Assert.Single(
            Run("Set-GlassClientConfig", new() { ["Token"] = "t0k3n", ["PassThru"] = true }).Succeeded().Objects));
        Assert.Equal("127.0.0.1:7100", passed.Router); // kept: not named this time
        Assert.True(passed.TokenSet);
        Assert.False(passed.SecretSet);
        Assert.Equal(module.ClientConfigPath, passed.Path);
    }

    [Fact]
    public void TheSavedSettingsAreWhatGetShowsAndThisUsersOnly()
    {
        // Router is the first positional parameter.
        Hosted.Invoke(module.Shared, ps => ps.AddCommand("Set-GlassClientConfig").AddArgument("router.example:7000").AddParameter("Secret", "hunter2")).Succeeded();
        var shown = Assert.IsType<GlassClientSettings>(Assert.Single(Run("Get-GlassClientConfig").Succeeded().Objects));
        Assert.Equal("router.example:7000", shown.Router);
        Assert.True(shown.SecretSet);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(module.ClientConfigPath));
        // The secret is said to be set, never shown.
        Assert.DoesNotContain("hunter2", string.Join("\n", Hosted.Script(module.Shared, "Get-GlassClientConfig | Format-List * | Out-String")));
    }

    [Fact]
    public void AnEmptyValueRemovesOneSettingAndKeepsTheOthers()
    {
        Run("Set-GlassClientConfig", new() { ["Router"] = "127.0.0.1:7100", ["Token"] = "t0k3n", ["Secret"] = "s3cr3t" }).Succeeded();
        var after = Assert.IsType<GlassClientSettings>(Assert.Single(
            Run("Set-GlassClientConfig", new() { ["Token"] = "", ["PassThru"] = true }).Succeeded().Objects));
        Assert.Equal("127.0.0.1:7100", after.Router);
        Assert.False(after.TokenSet);
        Assert.True(after.SecretSet);
    }
}
