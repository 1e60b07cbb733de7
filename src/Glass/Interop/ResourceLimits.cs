using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>The process's open-files limit (sys/resource.h), for errors that name it.</summary>
internal static partial class ResourceLimits
{
    // sys/resource.h
    private const int RLIMIT_NOFILE = 7;

    // struct rlimit
    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong rlim_cur;
        public ulong rlim_max;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out RLimit limit);

    /// <summary>(soft, hard) open-files limits, or null where they cannot be read.</summary>
    public static (ulong Soft, ulong Hard)? OpenFiles()
    {
        if (!OperatingSystem.IsLinux())
            return null;
        return getrlimit(RLIMIT_NOFILE, out var l) == 0 ? (l.rlim_cur, l.rlim_max) : null;
    }

    /// <summary>Descriptors this process holds now (Linux: /proc/self/fd), or -1.</summary>
    public static int OpenDescriptors()
    {
        try
        {
            return Directory.GetFiles("/proc/self/fd").Length;
        }
        catch (IOException)
        {
            return -1;
        }
        catch (UnauthorizedAccessException)
        {
            return -1;
        }
    }
}
