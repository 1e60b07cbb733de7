using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>Owns one kernel file descriptor and closes it exactly once.</summary>
internal sealed class SafeFileDescriptor : SafeHandle
{
    public SafeFileDescriptor() : base(invalidHandleValue: -1, ownsHandle: true) { }

    public SafeFileDescriptor(int fd) : this() => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    public int Value => (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
