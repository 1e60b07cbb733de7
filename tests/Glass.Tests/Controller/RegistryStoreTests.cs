using Glass.Controller;
using Glass.Tests.Translator;

namespace Glass.Tests.Controller;

/// <summary>The durable registry: what a controller restart keeps, what a bad file does, and two writers at once.</summary>
public sealed class RegistryStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "glass-registry-" + Guid.NewGuid().ToString("n"));
    private readonly ManualTime _wall = new();
    private readonly List<string> _warnings = new();

    private string File => Path.Combine(_dir, "state", "controller-7000.db");

    private static BinderInfo Binder(uint peer = 1) => new((_, _, _) => Task.CompletedTask, peer, 99);

    private (ChannelRegistry Registry, FakeClock Clock, RegistryStore Store) Start()
    {
        var clock = new FakeClock();
        var registry = new ChannelRegistry(clock, TimeSpan.FromMinutes(5));
        var store = RegistryStore.Open(File, _warnings.Add, _wall);
        registry.Attach(store);
        return (registry, clock, store);
    }

    private static void Stop(ChannelRegistry registry) => registry.Close()!.Dispose();

    [Fact]
    public void ARestartKeepsChannelsLeasedToTheirOwnersOnly()
    {
        var (first, _, _) = Start();
        var bound = first.Bind(null, null, "door", Binder());
        var away = Binder();
        var left = first.Bind(null, null, null, away);
        first.Detach(left.Id!, away);
        var gone = Binder();
        var released = first.Bind(null, null, null, gone);
        first.Release(released.Id!, gone);
        _wall.Advance(TimeSpan.FromMinutes(1));
        Stop(first);

        var (second, clock, _) = Start();
        Assert.Equal(2, second.Count);
        Assert.Equal(0, second.Bound);
        Assert.Null(second.Find(released.Id!));
        var c = second.Find(bound.Id!)!;
        Assert.Null(c.Binder); // leased, waiting for its binder
        Assert.True(ChannelRegistry.ConnectSecretMatches(c, "door"));
        Assert.False(ChannelRegistry.ConnectSecretMatches(c, "wrong"));

        // The hijack of issue #9: a stranger who knows the id binds it with a secret of their own.
        Assert.Equal(GlassErrors.Unauthorized, second.Bind(bound.Id, ChannelId.NewSecret(), null, Binder(66)).ErrorCode);
        Assert.Equal(GlassErrors.Unauthorized, second.BindLegacy(bound.Id!, Binder(66)).ErrorCode);
        Assert.True(second.Bind(bound.Id, bound.Secret, "door", Binder()).Success);

        // The one away before the restart has only what was left of its lease: 5 min less the 1 min before the restart.
        clock.Advance(TimeSpan.FromMinutes(3.9));
        Assert.NotNull(second.Find(left.Id!));
        clock.Advance(TimeSpan.FromMinutes(0.2));
        Assert.Null(second.Find(left.Id!));
        // Lapsed: still no one else's.
        Assert.Equal(GlassErrors.Unauthorized, second.BindLegacy(left.Id!, Binder(66)).ErrorCode);
        Assert.Equal(GlassErrors.Unauthorized, second.BindLegacy(released.Id!, Binder(66)).ErrorCode);
        Assert.True(second.Bind(left.Id, left.Secret, null, Binder()).Success);
        Stop(second);
        Assert.Empty(_warnings);
    }

    [Fact]
    public void ALeaseThatRanOutWhileTheControllerWasDownIsNotBroughtBack()
    {
        var (first, _, _) = Start();
        var b = Binder();
        var r = first.Bind(null, null, null, b);
        first.Detach(r.Id!, b);
        Stop(first);
        _wall.Advance(TimeSpan.FromMinutes(6));
        var (second, _, _) = Start();
        Assert.Null(second.Find(r.Id!));
        Assert.Equal(GlassErrors.Unauthorized, second.BindLegacy(r.Id!, Binder(66)).ErrorCode);
        Stop(second);
    }

    [Fact]
    public void OwnersAreForgottenAfterTheRetention()
    {
        var (first, _, _) = Start();
        var b = Binder();
        var r = first.Bind(null, null, null, b);
        first.Release(r.Id!, b);
        Stop(first);
        _wall.Advance(RegistryStore.Retention + TimeSpan.FromMinutes(1));
        var (second, _, _) = Start();
        Assert.True(second.BindLegacy(r.Id!, Binder(66)).Success);
        Stop(second);
    }

    [Fact]
    public void TheFileIsTheOwnersOnlyAndHoldsNoSecretInClear()
    {
        var (registry, _, _) = Start();
        var r = registry.Bind(null, null, "correct-horse", Binder());
        Stop(registry);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, System.IO.File.GetUnixFileMode(File));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, System.IO.File.GetUnixFileMode(Path.GetDirectoryName(File)!));
        }
        var bytes = string.Concat(Directory.GetFiles(Path.GetDirectoryName(File)!).Select(f => System.Text.Encoding.Latin1.GetString(System.IO.File.ReadAllBytes(f))));
        Assert.Contains(r.Id!, bytes);
        Assert.DoesNotContain(r.Secret!, bytes);
        Assert.DoesNotContain("correct-horse", bytes);
    }

    [Fact]
    public void ACorruptFileIsMovedAsideWithAWarningAndANewOneStarted()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(File)!);
        System.IO.File.WriteAllBytes(File, Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray());
        var (registry, _, _) = Start();
        var warning = Assert.Single(_warnings);
        Assert.Contains(File, warning);
        Assert.Contains("moved to", warning);
        var aside = Assert.Single(Directory.GetFiles(Path.GetDirectoryName(File)!, "*.corrupt-*"));
        Assert.Equal(8192, new FileInfo(aside).Length); // kept as it was, for whoever wants to look
        Assert.True(registry.Bind(null, null, null, Binder()).Success);
        Stop(registry);
    }

    [Fact]
    public void AFileThatCannotBeOpenedIsRegistryUnavailableNamingIt()
    {
        Directory.CreateDirectory(File); // a directory where the file should be
        var e = Assert.Throws<GlassException>(() => RegistryStore.Open(File, _warnings.Add, _wall));
        Assert.Equal(GlassErrors.RegistryUnavailable, e.ErrorId);
        Assert.Contains(File, e.Message);
    }

    [Fact]
    public void ANewerSchemaIsRefusedNotOverwritten()
    {
        RegistryStore.Open(File, _warnings.Add, _wall).Dispose();
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={File};Pooling=False"))
        {
            db.Open();
            using var c = db.CreateCommand();
            c.CommandText = "PRAGMA user_version = 99";
            c.ExecuteNonQuery();
        }
        var e = Assert.Throws<GlassException>(() => RegistryStore.Open(File, _warnings.Add, _wall));
        Assert.Equal(GlassErrors.RegistryUnavailable, e.ErrorId);
        Assert.Contains("newer", e.Message);
    }

    [Fact]
    public async Task TwoWritersAtOnceLoseNothing()
    {
        const int each = 300;
        var secrets = new string[2][];
        var writers = Enumerable.Range(0, 2).Select(w => Task.Run(() =>
        {
            secrets[w] = new string[each];
            var registry = new ChannelRegistry(new FakeClock(), TimeSpan.FromMinutes(5));
            registry.Attach(RegistryStore.Open(File, _warnings.Add, _wall));
            for (var i = 0; i < each; i++)
            {
                var r = registry.Bind(null, null, null, Binder((uint)w));
                Assert.True(r.Success);
                secrets[w][i] = r.Secret!;
            }
            Stop(registry);
        })).ToArray();
        await Task.WhenAll(writers);
        Assert.Empty(_warnings);

        var (reader, _, _) = Start();
        Assert.Equal(2 * each, reader.Count);
        foreach (var s in secrets.SelectMany(x => x))
            Assert.NotNull(reader.Find(ChannelId.FromSecret(s)));
        Stop(reader);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    private sealed class ManualTime : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan t) => _now += t;
    }
}
