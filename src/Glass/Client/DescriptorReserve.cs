using Microsoft.Win32.SafeHandles;

namespace Glass.Client;

/// <summary>
/// A few descriptors a client process keeps in reserve for when it runs out. A process at its
/// open-files limit cannot even write an error (the console opens its streams lazily) or refuse
/// a waiting connection; giving the reserve back at the first EMFILE lets it do both. It is taken
/// again only once there is room for it and as much again, so the process does not swing
/// between full and empty on every connection.
/// </summary>
internal static class DescriptorReserve
{
    private const int Size = 32;
    private static readonly object Gate = new();
    private static readonly List<SafeFileHandle> Held = new();

    /// <summary>Fills the reserve if there is room for twice its size; returns whether it is full.</summary>
    public static bool TryFill()
    {
        lock (Gate)
        {
            if (Held.Count >= Size)
                return true;
            var opened = new List<SafeFileHandle>(2 * Size);
            try
            {
                while (opened.Count < 2 * Size)
                    opened.Add(File.OpenHandle("/dev/null"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
            var full = opened.Count == 2 * Size;
            for (var i = 0; i < opened.Count; i++)
            {
                if (full && i < Size)
                    Held.Add(opened[i]);
                else
                    opened[i].Dispose();
            }
            return full;
        }
    }

    /// <summary>Gives the reserve back to the process; returns whether there was any.</summary>
    public static bool Release()
    {
        lock (Gate)
        {
            if (Held.Count == 0)
                return false;
            foreach (var h in Held)
                h.Dispose();
            Held.Clear();
            return true;
        }
    }
}
