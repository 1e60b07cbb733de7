using Glass.Controller;

namespace Glass.Tests.Controller;

public sealed class PortAllocatorTests
{
    [Fact]
    public void EachAddressGetsDistinctPortsUntilTheRangeIsExhausted()
    {
        var a = new PortAllocator(new PortRange(60000, 60003));
        var got = new HashSet<ushort>();
        for (var i = 0; i < 4; i++)
        {
            Assert.True(a.TryAllocate(1, out var p));
            Assert.True(got.Add(p));
            Assert.InRange(p, 60000, 60003);
        }
        Assert.False(a.TryAllocate(1, out _));
        // Another address is not limited by the first one's ports.
        Assert.True(a.TryAllocate(2, out _));
        Assert.Equal(5, a.InUse);
    }

    [Fact]
    public void AReleasedPortCanBeHandedOutAgain()
    {
        var a = new PortAllocator(new PortRange(60000, 60001));
        Assert.True(a.TryAllocate(1, out var p0));
        Assert.True(a.TryAllocate(1, out var p1));
        Assert.True(a.Release(1, p0));
        Assert.False(a.Release(1, p0));
        Assert.True(a.TryAllocate(1, out var again));
        Assert.Equal(p0, again);
        Assert.Equal(2, a.InUse);
        Assert.NotEqual(p0, p1);
    }

    [Fact]
    public void SuccessiveLinksRotateThroughTheRange()
    {
        var a = new PortAllocator(new PortRange(60000, 60009));
        Assert.True(a.TryAllocate(1, out var p));
        a.Release(1, p);
        Assert.True(a.TryAllocate(1, out var q));
        Assert.NotEqual(p, q); // a just-freed port is not reused at once
    }
}
