using Glass.Config;

namespace Glass.Tests.Config;

public sealed class ClientConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("glass-client-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ReadsTheRouterTokenAndSecret()
    {
        var c = ClientConfig.Parse("router: router.example:7000\ntoken: t0k3n\nsecret: \"s:#x\"\n", "client.yaml");
        Assert.Equal(("router.example:7000", "t0k3n", "s:#x"), (c.Router, c.Token, c.Secret));
        Assert.Equal(new ClientConfig(), ClientConfig.Parse("", "client.yaml"));
    }

    [Theory]
    [InlineData("router: a\nport: 7000\n", "client.yaml:2:1: unknown key 'port'; expected one of: router, token, secret, plaintext, routers")]
    [InlineData("token: two words\n", "client.yaml:1:8: 'token' must be 1 to 64 printable characters without spaces or '='")]
    [InlineData("router:\n", "client.yaml:1:8: 'router' needs a value")]
    [InlineData("- a\n", "client.yaml:1:1: the file must be a mapping of keys to values")]
    public void NamesTheLineAndKeyOfAMistake(string yaml, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ClientConfig.Parse(yaml, "client.yaml"));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void AMissingFileIsNoSettings()
    {
        Assert.Equal(new ClientConfig(), ClientConfig.Load(Path.Combine(_dir, "none", "client.yaml")));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void SavesWhatItReadsBackPrivatelyEvenWithCharactersYamlCares()
    {
        var path = Path.Combine(_dir, "glass", "client.yaml");
        var c = new ClientConfig { Router = "203.0.113.1:7000", Token = "a'b\"c", Secret = "#not-a-comment:{x}" };
        c.Save(path);
        Assert.Equal(c, ClientConfig.Load(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        // Removing a key and saving again leaves only the others.
        (c with { Token = null }).Save(path);
        Assert.Equal(c with { Token = null }, ClientConfig.Load(path));
        Assert.DoesNotContain("token", File.ReadAllText(path).Split('\n').Skip(1));
    }

    [Fact]
    public void LivesUnderXdgConfigHomeOrDotConfig()
    {
        Assert.Equal("/x/glass/client.yaml", ClientConfig.PathFor("/x", "/home/u"));
        Assert.Equal("/home/u/.config/glass/client.yaml", ClientConfig.PathFor(null, "/home/u"));
        // The XDG spec ignores a relative value.
        Assert.Equal("/home/u/.config/glass/client.yaml", ClientConfig.PathFor("rel", "/home/u"));
    }
}
