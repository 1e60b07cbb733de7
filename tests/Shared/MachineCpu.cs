using System.Globalization;

namespace Glass.Testing;

/// <summary>
/// The whole machine's busy CPU time from /proc/stat (user, nice, system, irq, softirq, steal),
/// which is the same in every network namespace: read around a measured sequence, it counts
/// every process of the path and the kernel's work in every namespace, but not the tool's own
/// start-up.
/// </summary>
internal static class MachineCpu
{
    // /proc/stat counts in USER_HZ, which the kernel fixes at 100 for user space.
    private const double TicksPerSecond = 100;

    /// <summary>Busy seconds since boot, or NaN where /proc/stat is missing or unreadable.</summary>
    public static double BusySeconds()
    {
        try
        {
            using var reader = new StreamReader("/proc/stat");
            var fields = (reader.ReadLine() ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 9 || fields[0] != "cpu")
                return double.NaN;
            long busy = 0;
            foreach (var i in new[] { 1, 2, 3, 6, 7, 8 })
                busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
            return busy / TicksPerSecond;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return double.NaN;
        }
    }

    /// <summary>Microseconds of busy CPU per item since <paramref name="startSeconds"/>, or -1 when unknown.</summary>
    public static double MicrosecondsPer(double startSeconds, int items)
    {
        var now = BusySeconds();
        return double.IsNaN(now) || double.IsNaN(startSeconds) || items <= 0 ? -1 : Math.Round((now - startSeconds) * 1e6 / items, 1);
    }
}
