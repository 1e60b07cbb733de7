using Glass.Controller;
using Glass.Tests.Translator;

namespace Glass.Tests.Controller;

public sealed class ChannelRegistryTests
{
    private readonly FakeClock _clock = new();
    private readonly ChannelRegistry _registry;

    public ChannelRegistryTests() => _registry = new ChannelRegistry(_clock, TimeSpan.FromMinutes(5));

    private static BinderInfo Binder(uint peer = 1) => new((_, _, _) => Task.CompletedTask, peer, 99);

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
    public void ReleaseForgetsTheChannelAtOnceButNotItsOwner()
    {
        var b = Binder();
        var r = _registry.Bind(null, null, null, b);
        _registry.Release(r.Id!, b);
        Assert.Null(_registry.Find(r.Id!));
        Assert.Equal(GlassErrors.Unauthorized, _registry.Bind(r.Id, "someone-else", null, Binder()).ErrorCode);
        Assert.True(_registry.Bind(r.Id, r.Secret, null, Binder()).Success);
    }

    [Fact]
    public void AFreshIdIsTheHashOfItsSecret()
    {
        var r = _registry.Bind(null, null, null, Binder());
        Assert.Equal(ChannelId.FromSecret(r.Secret!), r.Id);
        Assert.True(ChannelId.IsOwnedBy(r.Id!, r.Secret));
        Assert.False(ChannelId.IsOwnedBy(r.Id!, r.Secret + "0"));
        Assert.False(ChannelId.IsOwnedBy(r.Id!, null));
    }

    [Fact]
    public void TheIdSchemeIsFixed()
    {
        // Binders keep secrets across upgrades: the derivation must never change silently.
        // (SHA-256 of "glass channel id v1\0" and the secret, computed outside .NET.)
        Assert.Equal("3e78b261fffcab35edf2600247531d4c", ChannelId.FromSecret("00112233445566778899aabbccddeeff"));
    }

    [Fact]
    public void AClientChosenIdIsClaimedOnlyWithItsPreimage()
    {
        var secret = ChannelId.NewSecret();
        var id = ChannelId.FromSecret(secret).ToUpperInvariant();
        Assert.Equal(GlassErrors.Unauthorized, _registry.Bind(id, "mine", "door", Binder()).ErrorCode);
        var r = _registry.Bind(id, secret, "door", Binder());
        Assert.True(r.Success);
        Assert.Equal(id.ToLowerInvariant(), r.Id);
        var c = _registry.Find(id)!;
        Assert.True(ChannelRegistry.ConnectSecretMatches(c, "door"));
        Assert.False(ChannelRegistry.ConnectSecretMatches(c, "Door"));
        Assert.False(ChannelRegistry.ConnectSecretMatches(c, null));
        Assert.Equal(GlassErrors.BadRequest, _registry.Bind("xyz", "s", null, Binder()).ErrorCode);
    }

    [Fact]
    public void WithoutAStoreTheIdOfAnOwnerWhoseLeaseLapsedIsNeverALegacyBinders()
    {
        // A controller with registry: memory and tls.allowPlaintext (tests/pester/ControllerAttack.Tests.ps1
        // takes the lapsed lease with a file).
        var owner = Binder();
        var r = _registry.Bind(null, null, null, owner);
        _registry.Detach(r.Id!, owner);
        _clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Null(_registry.Find(r.Id!));
        Assert.Equal(GlassErrors.Unauthorized, _registry.BindLegacy(r.Id!, Binder(9)).ErrorCode);
        // Its owner binds it again; an id no owner bound is the prototype's to take.
        Assert.True(_registry.Bind(r.Id, r.Secret, null, Binder()).Success);
        Assert.True(_registry.BindLegacy("0102030405060708090a0b0c0d0e0f10", Binder(9)).Success);
    }

    [Fact]
    public void PastItsBoundTheMemoryOfOwnersFailsClosedForTheLegacyBind()
    {
        for (var i = 0; i < ChannelRegistry.MaxOwnedThisRun; i++)
        {
            var b = Binder();
            _registry.Release(_registry.Bind(null, null, null, b).Id!, b);
        }
        Assert.Equal(0, _registry.Count);
        Assert.Equal(GlassErrors.Unauthorized, _registry.BindLegacy("0102030405060708090a0b0c0d0e0f10", Binder(9)).ErrorCode);
    }

    [Fact]
    public void ALegacyBinderTakesAnUnknownIdButNeverAnOwnersAndTheOwnerBeatsIt()
    {
        var legacyId = "0102030405060708090a0b0c0d0e0f10";
        var l = Binder(3);
        Assert.True(_registry.BindLegacy(legacyId, l).Success);
        Assert.Equal(GlassErrors.ChannelInUse, _registry.BindLegacy(legacyId, Binder(4)).ErrorCode);
        _registry.Detach(legacyId, l);
        Assert.True(_registry.BindLegacy(legacyId, Binder(4)).Success); // no secret: the old design's rule

        var owner = Binder();
        var r = _registry.Bind(null, null, null, owner);
        Assert.Equal(GlassErrors.Unauthorized, _registry.BindLegacy(r.Id!, Binder(5)).ErrorCode);
        _registry.Release(r.Id!, owner);
        // Forgotten for connectors, but not for the prototype's BIND.
        Assert.Null(_registry.Find(r.Id!));
        Assert.Equal(GlassErrors.Unauthorized, _registry.BindLegacy(r.Id!, Binder(5)).ErrorCode);

        // An owner whose id a legacy binder squats takes it over.
        var secret = ChannelId.NewSecret();
        var squatted = ChannelId.FromSecret(secret);
        Assert.True(_registry.BindLegacy(squatted, Binder(6)).Success);
        var mine = Binder(7);
        Assert.True(_registry.Bind(squatted, secret, null, mine).Success);
        Assert.Same(mine, _registry.Find(squatted)!.Binder);
    }
}
