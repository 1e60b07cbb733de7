using System.Reflection;
using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// Finds SQLite's native library (e_sqlite3, from the SQLitePCLRaw bundle) for the durable
/// registry. A program with a deps.json finds it by itself; PowerShell loads the module without
/// one, so the library's runtimes/RID/native folder beside our assemblies is never probed. This
/// resolver looks there first and otherwise leaves the search to .NET.
/// </summary>
internal static class SqliteNative
{
    private static int _done;

    public static void EnsureResolvable()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0)
            return;
        var provider = typeof(SQLitePCL.SQLite3Provider_e_sqlite3).Assembly;
        try
        {
            NativeLibrary.SetDllImportResolver(provider, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Someone set one already (the host, or the provider itself): theirs stands.
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != "e_sqlite3")
            return IntPtr.Zero;
        var dir = Path.GetDirectoryName(typeof(SqliteNative).Assembly.Location);
        if (string.IsNullOrEmpty(dir))
            return IntPtr.Zero;
        var file = OperatingSystem.IsWindows() ? "e_sqlite3.dll" : OperatingSystem.IsMacOS() ? "libe_sqlite3.dylib" : "libe_sqlite3.so";
        var candidate = Path.Combine(dir, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", file);
        return NativeLibrary.TryLoad(candidate, out var handle) ? handle : IntPtr.Zero;
    }
}
