using Glass.Protocol;

namespace Glass.Tests.Protocol;

public sealed class ControllerRequestTests
{
    private const string Id = "0123456789abcdef0123456789abcdef";

    public static TheoryData<ControllerRequest> Requests => new()
    {
        new ControllerRequest { Verb = ControllerVerb.Bind },
        new ControllerRequest { Verb = ControllerVerb.Bind, ChannelId = Id, Secret = "s3cret", ConnectSecret = "door", Token = "tok" },
        new ControllerRequest { Verb = ControllerVerb.Connect, ChannelId = Id },
        new ControllerRequest { Verb = ControllerVerb.Connect, ChannelId = Id, Secret = "door", Token = "tok" },
        new ControllerRequest { Verb = ControllerVerb.Connect, ChannelId = Id, Ahead = true },
        new ControllerRequest { Verb = ControllerVerb.Lookup, ChannelId = Id, Token = "tok" },
        new ControllerRequest { Verb = ControllerVerb.Status },
        new ControllerRequest { Verb = ControllerVerb.Session },
        new ControllerRequest { Verb = ControllerVerb.Session, Token = "tok" },
        new ControllerRequest { Verb = ControllerVerb.Cancel, Port = 61234 },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void EveryRequestSurvivesARoundTrip(ControllerRequest request)
    {
        var line = request.Format();
        Assert.StartsWith("GLASS/1 ", line);
        Assert.True(ControllerRequest.TryParse(line, out var parsed, out _, out var error), error);
        Assert.Equal(request, parsed);
    }

    [Theory]
    [InlineData("", "bad-request", "expected")]
    [InlineData("HELLO", "bad-request", "expected")]
    [InlineData("GLASS/2 BIND", "version", "GLASS/2")]
    [InlineData("GLASS/1 FLY", "bad-request", "unknown request 'FLY'")]
    [InlineData("GLASS/1 CONNECT", "bad-request", "needs a channel id")]
    [InlineData("GLASS/1 BIND id=" + Id, "bad-request", "together")]
    [InlineData("GLASS/1 BIND secret=x", "bad-request", "together")]
    [InlineData("GLASS/1 CONNECT " + Id + " tokn=x", "bad-request", "unknown or repeated option 'tokn'")]
    [InlineData("GLASS/1 CONNECT " + Id + " token=a token=b", "bad-request", "repeated")]
    [InlineData("GLASS/1 CONNECT " + Id + " token=", "bad-request", "needs a value")]
    [InlineData("GLASS/1 CONNECT " + Id + " token=a=b", "bad-request", "needs a value")]
    [InlineData("GLASS/1 LOOKUP " + Id + " secret=x", "bad-request", "unknown or repeated option 'secret'")]
    [InlineData("GLASS/1 CONNECT " + Id + " connect-secret=x", "bad-request", "unknown or repeated option")]
    [InlineData("GLASS/1 SESSION secret=x", "bad-request", "unknown or repeated option 'secret' for SESSION")]
    [InlineData("GLASS/1 SESSION " + Id, "bad-request", "needs a value")]
    [InlineData("GLASS/1 CONNECT " + Id + " ahead=2", "bad-request", "unknown or repeated option 'ahead'")]
    [InlineData("GLASS/1 CONNECT " + Id + " ahead=1 ahead=1", "bad-request", "unknown or repeated option 'ahead'")]
    [InlineData("GLASS/1 LOOKUP " + Id + " ahead=1", "bad-request", "unknown or repeated option 'ahead' for LOOKUP")]
    [InlineData("GLASS/1 CANCEL", "bad-request", "CANCEL needs one router port")]
    [InlineData("GLASS/1 CANCEL 0", "bad-request", "CANCEL needs one router port")]
    [InlineData("GLASS/1 CANCEL 65536", "bad-request", "CANCEL needs one router port")]
    [InlineData("GLASS/1 CANCEL +5", "bad-request", "CANCEL needs one router port")]
    [InlineData("GLASS/1 CANCEL 5 token=x", "bad-request", "CANCEL needs one router port")]
    public void MalformedRequestsAreRefusedWithTheirCause(string line, string code, string why)
    {
        Assert.False(ControllerRequest.TryParse(line, out _, out var errorCode, out var error));
        Assert.Equal(code, errorCode);
        Assert.Contains(why, error);
    }

    [Fact]
    public void OverlongValuesAreRefused()
    {
        Assert.False(ControllerRequest.TryParse($"GLASS/1 CONNECT {Id} token={new string('x', 65)}", out _, out _, out var error));
        Assert.Contains("64", error);
    }

    [Fact]
    public void RandomLinesNeverThrow()
    {
        var rng = new Random(5);
        var words = new[] { "GLASS/1", "BIND", "CONNECT", "LOOKUP", "SESSION", "STATUS", "CANCEL", "61000", "id=", "secret=", "token=", Id, "=", " ", "x" };
        for (var i = 0; i < 20000; i++)
        {
            var line = string.Join("", Enumerable.Range(0, rng.Next(8)).Select(_ => words[rng.Next(words.Length)] + (rng.Next(2) == 0 ? " " : "")));
            ControllerRequest.TryParse(line, out _, out _, out _);
        }
    }
}
