using System.Security.Cryptography;
using Microsoft.Data.Sqlite;

namespace Glass.Controller;

/// <summary>What the durable registry keeps of a channel. Times are Unix milliseconds (wall clock: they outlive the process).</summary>
internal readonly record struct StoredChannel(string Id, bool Legacy, byte[]? ConnectSecretHash, StoredState State, long ChangedAt);

internal enum StoredState
{
    Bound = 0,
    Away = 1,
    Released = 2,
}

/// <summary>
/// The controller's channel registry on disk: one SQLite file (WAL, so another controller or a
/// reader may share it), readable by its owner only. It holds no binder secret (an id is the hash
/// of its secret) and connect secrets only as SHA-256 hashes. Rows outlive their lease for
/// <see cref="Retention"/>, so an unauthenticated legacy BIND can never claim an id an owner used.
/// </summary>
internal sealed class RegistryStore : IDisposable
{
    public static readonly TimeSpan Retention = TimeSpan.FromDays(30);
    private const int SchemaVersion = 1;
    // SQLite's primary result codes for a file that is not, or no longer, a database.
    private const int SQLITE_CORRUPT = 11, SQLITE_NOTADB = 26;

    private readonly SqliteConnection _db;
    private readonly TimeProvider _time;
    private readonly SqliteCommand _put, _owned;

    private RegistryStore(string path, SqliteConnection db, TimeProvider time)
    {
        Path = path;
        _db = db;
        _time = time;
        _put = Command("""
            INSERT INTO channels(id, legacy, connect_secret_sha256, state, changed_at) VALUES ($id, $legacy, $hash, $state, $at)
            ON CONFLICT(id) DO UPDATE SET legacy = excluded.legacy, connect_secret_sha256 = excluded.connect_secret_sha256,
                state = excluded.state, changed_at = excluded.changed_at
            """, "$id", "$legacy", "$hash", "$state", "$at");
        _owned = Command("SELECT 1 FROM channels WHERE id = $id AND legacy = 0", "$id");
    }

    public string Path { get; }

    public long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Opens (or creates, owner-only) the registry at <paramref name="path"/>. A file SQLite finds
    /// corrupt is moved aside (named in <paramref name="warn"/>) and a fresh one started: ids certify
    /// their owners, so binders simply bind again; only leases and connect secrets wait for them.
    /// </summary>
    public static RegistryStore Open(string path, Action<string> warn, TimeProvider? time = null)
    {
        path = System.IO.Path.GetFullPath(path);
        Interop.SqliteNative.EnsureResolvable();
        try
        {
            return OpenOnce(path, time ?? TimeProvider.System);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is SQLITE_CORRUPT or SQLITE_NOTADB)
        {
            var aside = $"{path}.corrupt-{DateTime.UtcNow:yyyyMMddTHHmmssZ}";
            SqliteConnection.ClearAllPools();
            File.Move(path, aside);
            foreach (var suffix in new[] { "-wal", "-shm" })
            {
                if (File.Exists(path + suffix))
                    File.Move(path + suffix, aside + suffix);
            }
            warn($"The channel registry {path} was corrupt ({e.Message}); it was moved to {aside} and a new one started. Binders bind their channels again as they reconnect.");
            return OpenOnce(path, time ?? TimeProvider.System);
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new GlassException(GlassErrors.RegistryUnavailable,
                $"The channel registry {path} cannot be opened: {e.Message}. Name a writable file with controller.registry (or 'memory' for none).", e);
        }
    }

    private static RegistryStore OpenOnce(string path, TimeProvider time)
    {
        var dir = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(dir);
            else
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (!OperatingSystem.IsWindows())
        {
            // Created owner-only before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
            if (!File.Exists(path))
            {
                try
                {
                    new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }).Dispose();
                }
                catch (IOException) when (File.Exists(path))
                {
                    // Another writer created it first, owner-only as well: open that one.
                }
            }
            else if ((File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        var db = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            // Seconds a writer waits for another one's lock (SQLite's busy timeout).
            DefaultTimeout = 10,
        }.ToString());
        try
        {
            db.Open();
            Execute(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
            if (Scalar(db, "PRAGMA quick_check") is not "ok")
                throw new SqliteException("quick_check failed", SQLITE_CORRUPT);
            Execute(db, """
                CREATE TABLE IF NOT EXISTS channels(
                    id TEXT PRIMARY KEY NOT NULL,
                    legacy INTEGER NOT NULL,
                    connect_secret_sha256 BLOB,
                    state INTEGER NOT NULL,
                    changed_at INTEGER NOT NULL) WITHOUT ROWID;
                """);
            var version = Convert.ToInt32(Scalar(db, "PRAGMA user_version"));
            if (version == 0)
                Execute(db, $"PRAGMA user_version = {SchemaVersion}");
            else if (version > SchemaVersion)
                throw new GlassException(GlassErrors.RegistryUnavailable, $"The channel registry {path} was written by a newer Glass (schema {version}); run that version or name another file with controller.registry.");
            return new RegistryStore(path, db, time);
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    /// <summary>Forgets rows older than <see cref="Retention"/>; returns the rest that are bound or away.</summary>
    public List<StoredChannel> Load()
    {
        using (var prune = _db.CreateCommand())
        {
            prune.CommandText = "DELETE FROM channels WHERE changed_at < $before";
            prune.Parameters.AddWithValue("$before", Now - (long)Retention.TotalMilliseconds);
            prune.ExecuteNonQuery();
        }
        var rows = new List<StoredChannel>();
        using var read = _db.CreateCommand();
        read.CommandText = "SELECT id, legacy, connect_secret_sha256, state, changed_at FROM channels WHERE state <> $released";
        read.Parameters.AddWithValue("$released", (int)StoredState.Released);
        using var r = read.ExecuteReader();
        while (r.Read())
        {
            // A row another program wrote badly is skipped, not trusted.
            if (!ChannelId.TryNormalize(r.GetString(0), out var id) || id != r.GetString(0))
                continue;
            var hash = r.IsDBNull(2) ? null : (byte[])r[2];
            if (hash is not null && hash.Length != SHA256.HashSizeInBytes)
                continue;
            rows.Add(new StoredChannel(id, r.GetInt64(1) != 0, hash, (StoredState)r.GetInt32(3), r.GetInt64(4)));
        }
        return rows;
    }

    public void Put(string id, bool legacy, byte[]? connectSecretHash, StoredState state)
    {
        _put.Parameters["$id"].Value = id;
        _put.Parameters["$legacy"].Value = legacy ? 1 : 0;
        _put.Parameters["$hash"].Value = (object?)connectSecretHash ?? DBNull.Value;
        _put.Parameters["$state"].Value = (int)state;
        _put.Parameters["$at"].Value = Now;
        _put.ExecuteNonQuery();
    }

    /// <summary>Whether an owner (not a legacy binder) bound <paramref name="id"/> within the retention.</summary>
    public bool IsOwned(string id)
    {
        _owned.Parameters["$id"].Value = id;
        return _owned.ExecuteScalar() is not null;
    }

    private SqliteCommand Command(string text, params string[] parameters)
    {
        var c = _db.CreateCommand();
        c.CommandText = text;
        foreach (var p in parameters)
            c.Parameters.Add(new SqliteParameter(p, null));
        c.Prepare();
        return c;
    }

    private static void Execute(SqliteConnection db, string text)
    {
        using var c = db.CreateCommand();
        c.CommandText = text;
        c.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection db, string text)
    {
        using var c = db.CreateCommand();
        c.CommandText = text;
        return c.ExecuteScalar();
    }

    public void Dispose()
    {
        _put.Dispose();
        _owned.Dispose();
        _db.Dispose();
    }
}
