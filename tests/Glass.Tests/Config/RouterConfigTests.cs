using System.Net;
using Glass.Config;
using Glass.Translator;

namespace Glass.Tests.Config;

public sealed class RouterConfigTests
{
    [Fact]
    public void TheMetricsSectionNamesAnAddressAndAPort()
    {
        var c = RouterConfig.Parse("metrics:\n  address: 0.0.0.0\n  port: 9464\n", "r.yaml");
        Assert.Equal((IPAddress.Any, 9464), (c.MetricsAddress!, c.MetricsPort!.Value));
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("metrics:\n  port: 0\n", "r.yaml"));
        Assert.Equal("r.yaml:2:9: 'metrics.port' must be a whole number from 1 to 65535, not '0'", e.Message);
        e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("metrics:\n  address: here\n", "r.yaml"));
        Assert.Equal("metrics.address", e.Key);
    }

    [Fact]
    public void TheExampleConfigLoads()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "router.yaml");
        var c = RouterConfig.Load(path);
        Assert.Equal((ushort)6, c.Queue);
        Assert.Equal(PortRange.Default, c.PortRange);
        Assert.Equal("/run/glass/translator.sock", c.ControlSocket);
        Assert.Equal(IPAddress.Any, c.ControllerAddress);
        Assert.Equal(7000, c.ControllerPort);
        Assert.Equal(TimeSpan.FromSeconds(60), c.PendingTimeout);
        Assert.Equal(SpliceOptions.Rfc5382EstablishedIdle, c.IdleTimeout);
        Assert.Equal(SpliceOptions.Rfc5382Transitory, c.TimeWait);
        Assert.Equal(TimeSpan.FromSeconds(300), c.LeaseTime);
        Assert.Equal((64, 512, 2000, 65536), (c.MaxBindingsPerAddress, c.MaxLinksPerAddress, c.ConnectRatePerAddress, c.MaxSessions));
        Assert.Equal((OffloadMode.Kernel, false), (c.Offload, c.KeepSessions));
        Assert.Null(c.BindToken); // commented out in the example
    }

    [Fact]
    public void OffloadAndKeepSessionsTakeOnlyTheirWords()
    {
        var c = RouterConfig.Parse("offload: none\nkeepSessions: true\n", "a.yaml");
        Assert.Equal((OffloadMode.None, true), (c.Offload, c.KeepSessions));
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("offload: fast\n", "a.yaml"));
        Assert.Equal("offload", e.Key);
        Assert.Contains("'kernel' or 'none'", e.Message);
        e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("keepSessions: yes\n", "a.yaml"));
        Assert.Equal("keepSessions", e.Key);
        Assert.Contains("true or false", e.Message);
    }

    [Fact]
    public void FailOpenIsABooleanAndOffByDefault()
    {
        Assert.Null(RouterConfig.Parse("queue: 6\n", "a.yaml").FailOpen);
        Assert.True(RouterConfig.Parse("failOpen: true\n", "a.yaml").FailOpen);
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("failOpen: 1\n", "a.yaml"));
        Assert.Equal("failOpen", e.Key);
    }

    [Fact]
    public void AccessTokensAreReadAndCheckedForSpaces()
    {
        var c = RouterConfig.Parse("access:\n  bindToken: abc\n  connectToken: xyz\n", "a.yaml");
        Assert.Equal(("abc", "xyz"), (c.BindToken, c.ConnectToken));
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Parse("access:\n  bindToken: a=b\n", "a.yaml"));
        Assert.StartsWith("a.yaml:2:14:", e.Message);
    }

    [Fact]
    public void AnEmptyFileMeansAllDefaults()
    {
        var c = RouterConfig.Parse("# nothing here\n", "empty.yaml");
        Assert.Null(c.Queue);
        Assert.Null(c.PortRange);
    }

    [Theory]
    [InlineData("queue: 6\nquue: 7\n", "r.yaml:2:1:", "unknown key 'quue'")]
    [InlineData("queue: lots\n", "r.yaml:1:8:", "'queue' must be a whole number")]
    [InlineData("queue: 6\nportRange: 61000-60000\n", "r.yaml:2:12:", "'portRange'")]
    [InlineData("controller:\n  port: 0\n", "r.yaml:2:9:", "'controller.port' must be a whole number from 1 to 65535")]
    [InlineData("controller:\n  adress: 1.2.3.4\n", "r.yaml:2:3:", "unknown key 'controller.adress'")]
    [InlineData("controller:\n  address: ::1\n", "r.yaml:2:12:", "must be an IPv4 address")]
    [InlineData("timeouts: 5\n", "r.yaml:1:11:", "'timeouts' must be a mapping")]
    [InlineData("queue: [6\n", "r.yaml:", "not valid YAML")]
    [InlineData("- 1\n- 2\n", "r.yaml:1:1:", "must be a mapping")]
    public void ABadFileNamesTheFileLineAndKey(string yaml, string where, string what)
    {
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Parse(yaml, "r.yaml"));
        Assert.StartsWith(where, e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void AMissingFileSaysSo()
    {
        var e = Assert.Throws<ConfigException>(() => RouterConfig.Load("/nonexistent/glass.yaml"));
        Assert.Contains("/nonexistent/glass.yaml", e.Message);
        Assert.Contains("cannot be read", e.Message);
    }
}
