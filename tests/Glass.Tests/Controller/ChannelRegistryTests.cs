using Glass.Controller;
using Glass.Tests.Translator;

namespace Glass.Tests.Controller;

public sealed class ChannelRegistryTests
{
    private readonly FakeClock _clock = new();
    private readonly ChannelRegistry _registry;

    public ChannelRegistryTests() => _registry = new ChannelRegistry(_clock, TimeSpan.FromMinutes(5));

    private static BinderInfo Binder(uint peer = 1) => new((_, _) => Task.CompletedTask, peer, 99);

    [Fact]
    public void AFreshBindGetsARandomIdAndSecret()
    {
        var a = _registry.Bind(null, null, null, Binder());
        var b = _registry.Bind(null, null, null, Binder());
        Assert.True(a.Success && b.Success);
        Assert.Matches("^[0-9a-f]{32}$", a.Id!);
        Assert.Matches("^[0-9a-f]{32}$", a.Secret!);
        Assert.NotEqual(a.Id, b.Id);
        Assert.NotEqual(a.Secret, b.Secret);
    }

    [Fact]
    public void ADroppedBinderKeepsItsIdForTheLeaseThenLosesIt()
    {
        var first = Binder();
        var r = _registry.Bind(null, null, null, first);
        _registry.Detach(r.Id!, first);
        Assert.Null(_registry.Find(r.Id!)!.Binder); // away, not unknown

        _clock.Advance(TimeSpan.FromMinutes(4));
        var again = _registry.Bind(r.Id, r.Secret, null, Binder());
        Assert.True(again.Success);
        Assert.Equal(r.Id, again.Id);

        _registry.Detach(r.Id!, _registry.Find(r.Id!)!.Binder!);
        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(_registry.Find(r.Id!));
    }

    [Fact]
    public void OnlyTheSecretReclaimsALeasedId()
    {
        var b = Binder();
        var r = _registry.Bind(null, null, null, b);
        _registry.Detach(r.Id!, b);
        var thief = _registry.Bind(r.Id, "guess", null, Binder(2));
        Assert.False(thief.Success);
        Assert.Equal(GlassErrors.Unauthorized, thief.ErrorCode);
    }

    [Fact]
    public void ABoundIdCannotBeBoundTwice()
    {
        var r = _registry.Bind(null, null, null, Binder());
        var twice = _registry.Bind(r.Id, r.Secret, null, Binder());
        Assert.Equal(GlassErrors.ChannelInUse, twice.ErrorCode);
    }

    [Fact]
    public void AStaleDetachDoesNotUnbindTheNewBinder()
    {
        var old = Binder();
        var r = _registry.Bind(null, null, null, old);
        _registry.Detach(r.Id!, old);
        var fresh = Binder();
        _registry.Bind(r.Id, r.Secret, null, fresh);
        _registry.Detach(r.Id!, old);
        Assert.Same(fresh, _registry.Find(r.Id!)!.Binder);
    }

    [Fact]
    public void ReleaseForgetsTheChannelAtOnce()
    {
        var b = Binder();
        var r = _registry.Bind(null, null, null, b);
        _registry.Release(r.Id!, b);
        Assert.Null(_registry.Find(r.Id!));
        Assert.True(_registry.Bind(r.Id, "someone-else", null, Binder()).Success);
    }

    [Fact]
    public void AClientChosenIdIsClaimedWithItsSecret()
    {
        var id = "00112233445566778899AABBCCDDEEFF";
        var r = _registry.Bind(id, "mine", "door", Binder());
        Assert.True(r.Success);
        Assert.Equal(id.ToLowerInvariant(), r.Id);
        Assert.Equal("door", _registry.Find(id)!.ConnectSecret);
        Assert.Equal(GlassErrors.BadRequest, _registry.Bind("xyz", "s", null, Binder()).ErrorCode);
    }
}
