using Glass.Translator;

namespace Glass.Tests.Translator;

public sealed class SessionTableTests
{
    private static (SessionTable Table, List<Session> Sessions) Filled(int count)
    {
        var table = new SessionTable();
        var sessions = Enumerable.Range(1, count).Select(i => new Session(i, 1, 1000, 2, 2000, 0)).ToList();
        foreach (var s in sessions)
            table.Add(s);
        return (table, sessions);
    }

    [Fact]
    public void HoldsWhatWasAddedUntilItIsRemoved()
    {
        var (table, sessions) = Filled(100);
        // Every other one goes; the ones that took their slots stay findable.
        foreach (var s in sessions.Where(s => s.Id % 2 == 0))
            Assert.True(table.Remove(s));
        Assert.Equal(50, table.Count);
        foreach (var s in sessions)
            Assert.Equal(s.Id % 2 == 1, table.Contains(s));
        Assert.False(table.Remove(sessions[1])); // removed already
        Assert.Equal(-1, sessions[1].Slot);
        var seen = new List<long>();
        foreach (var s in table)
            seen.Add(s.Id);
        Assert.Equal(sessions.Where(s => s.Id % 2 == 1).Select(s => s.Id).Order(), seen.Order());
    }

    [Fact]
    public void TheSessionAtHandMayBeRemovedWhileEnumerating()
    {
        var (table, sessions) = Filled(40);
        var seen = new List<long>();
        foreach (var s in table)
        {
            seen.Add(s.Id);
            if (s.Id % 3 != 0)
                table.Remove(s);
        }
        // Each session was seen exactly once, and only the kept ones are left.
        Assert.Equal(sessions.Select(s => s.Id), seen.Order());
        Assert.Equal(sessions.Count(s => s.Id % 3 == 0), table.Count);
        Assert.All(sessions, s => Assert.Equal(s.Id % 3 == 0, table.Contains(s)));
    }

    [Fact]
    public void GivesBackMostOfItsArrayAfterABurstEnds()
    {
        var (table, sessions) = Filled(10_000);
        foreach (var s in sessions.Skip(10))
            table.Remove(s);
        Assert.Equal(10, table.Count);
        Assert.True(table.Capacity <= 64, $"capacity {table.Capacity} after shrinking to 10 sessions");
        Assert.All(sessions.Take(10), s => Assert.True(table.Contains(s)));
    }

    [Fact]
    public void TheEngineListsSessionsOldestFirstWhateverTheTableDid()
    {
        var engine = new SpliceEngine(new FakeKernel(), new FakeClock());
        var peerA = Glass.Packets.Ipv4.Parse("203.0.113.2");
        var peerB = Glass.Packets.Ipv4.Parse("198.51.100.7");
        for (ushort i = 0; i < 6; i++)
            Assert.True(engine.Link(peerA, (ushort)(60000 + i), peerB, (ushort)(61000 + i)).Success);
        // Removing the oldest moves the newest into its slot.
        Assert.True(engine.Unlink(peerA, 60000));
        var ids = engine.GetSessions().Select(x => x.Id).ToList();
        Assert.Equal(5, ids.Count);
        Assert.Equal(ids.Order(), ids);
    }
}
