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
        Assert.False(a.TryAllocate(1, out var none));
        Assert.Equal(0, none);
        // Another address is not limited by the first one's ports.
        Assert.True(a.TryAllocate(2, out _));
        Assert.Equal(5, a.InUse);
        Assert.Equal((4, 1), (a.CountFor(1), a.CountFor(2)));
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
        Assert.Equal(p0, again); // the only free one
        Assert.Equal(2, a.InUse);
        Assert.NotEqual(p0, p1);
    }

    [Fact]
    public void OnlyTheLinkHoldingAPortFreesIt()
    {
        var a = new PortAllocator(new PortRange(60000, 60000));
        Assert.True(a.TryAllocate(1, out var p));
        a.Assign(1, p, link: 7);
        Assert.False(a.Release(1, p, link: 8));
        Assert.True(a.Release(1, p, link: 7));
        // The port goes to link 9; a late event about link 7 must not free it.
        Assert.True(a.TryAllocate(1, out var again));
        Assert.Equal(p, again);
        Assert.False(a.Release(1, p, link: 7)); // before link 9 is named, too
        a.Assign(1, p, link: 9);
        Assert.False(a.Release(1, p, link: 7));
        Assert.Equal(1, a.InUse);
        Assert.True(a.Release(1, p, link: 9));
        Assert.Equal(0, a.InUse);
    }

    [Fact]
    public void AFullRangeIsHandedOutWithoutDuplicatesEvenWhenFewPortsAreLeft()
    {
        // Random draws mostly miss once the range is nearly full: the scan still finds every port.
        var a = new PortAllocator(new PortRange(61000, 61999));
        var got = new HashSet<ushort>();
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(a.TryAllocate(7, out var p), $"allocation {i} failed");
            Assert.True(got.Add(p), $"port {p} handed out twice");
        }
        Assert.False(a.TryAllocate(7, out _));
        Assert.Equal(1000, a.InUse);
        Assert.True(a.Release(7, 61500));
        Assert.True(a.TryAllocate(7, out var last));
        Assert.Equal(61500, last);
    }

    [Fact]
    public void PortsAreDrawnAtRandomNotInTurn()
    {
        // Knowing the port a peer got, or the one this client got last, says nothing about the next.
        var a = new PortAllocator(new PortRange(61000, 61999));
        var counts = new int[1000];
        var successors = 0;
        ushort previous = 0;
        const int draws = 20_000;
        for (var i = 0; i < draws; i++)
        {
            Assert.True(a.TryAllocate(9, out var p));
            Assert.True(a.Release(9, p));
            counts[p - 61000]++;
            if (p == (ushort)(previous + 1))
                successors++;
            previous = p;
        }
        // A rotating cursor would make every draw the last one plus one; random draws hit that 1 in 1000.
        Assert.InRange(successors, 0, 60);
        // Uniform: 20 per port on average; every port seen, none far above the rest (chi-square, 999
        // degrees of freedom: mean 999, standard deviation 45; 1250 is more than five of them).
        Assert.All(counts, n => Assert.InRange(n, 1, 60));
        var chiSquare = counts.Sum(n => (n - 20.0) * (n - 20.0) / 20.0);
        Assert.InRange(chiSquare, 0, 1250);
    }
}
