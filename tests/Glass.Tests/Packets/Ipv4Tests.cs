using Glass.Packets;

namespace Glass.Tests.Packets;

public class Ipv4Tests
{
    [Theory]
    [InlineData("203.0.113.1", 0xCB007101u)]
    [InlineData("0.0.0.0", 0u)]
    [InlineData("255.255.255.255", 0xFFFFFFFFu)]
    [InlineData("192.0.2.1", 0xC0000201u)]
    [InlineData("10.0.0.255", 0x0A0000FFu)]
    [InlineData("1.2.3.4", 0x01020304u)]
    public void ParsesAndFormats(string text, uint value)
    {
        Assert.Equal(value, Ipv4.Parse(text));
        Assert.True(Ipv4.TryParse(text, out uint parsed));
        Assert.Equal(value, parsed);
        Assert.Equal(text, Ipv4.Format(value));
    }

    [Theory]
    [InlineData("")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4.5")]
    [InlineData("256.0.0.1")]
    [InlineData("1.2.3.256")]
    [InlineData("1.2.3.1000")]
    [InlineData("1..3.4")]
    [InlineData(".1.2.3")]
    [InlineData("1.2.3.4.")]
    [InlineData(" 1.2.3.4")]
    [InlineData("1.2.3.4 ")]
    [InlineData("+1.2.3.4")]
    [InlineData("-1.2.3.4")]
    [InlineData("01.2.3.4")]
    [InlineData("0x7f.0.0.1")]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("::1")]
    [InlineData("1.2.3.a")]
    [InlineData("１.2.3.4")] // non-ASCII digit
    public void RejectsNonDottedQuad(string text)
    {
        Assert.False(Ipv4.TryParse(text, out uint value));
        Assert.Equal(0u, value);
        Assert.Throws<FormatException>(() => Ipv4.Parse(text));
    }

    [Fact]
    public void NullIsRejected()
    {
        Assert.False(Ipv4.TryParse(null, out _));
    }

    [Fact]
    public void RoundTripsRandomAddresses()
    {
        var rng = new Random(791);
        for (int i = 0; i < 1000; i++)
        {
            uint a = (uint)rng.NextInt64(0, 1L << 32);
            Assert.Equal(a, Ipv4.Parse(Ipv4.Format(a)));
            Assert.Equal(System.Net.IPAddress.Parse(Ipv4.Format(a)).GetAddressBytes(),
                new[] { (byte)(a >> 24), (byte)(a >> 16), (byte)(a >> 8), (byte)a });
        }
    }
}
