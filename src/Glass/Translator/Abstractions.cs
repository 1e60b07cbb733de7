namespace Glass.Translator;

/// <summary>Where the splice engine sends the IPv4 datagrams it rewrote or built (the kernel, or a fake in tests).</summary>
public interface IPacketSender
{
    /// <summary>Sends one complete IPv4 datagram; false when the kernel refused it (counted, never thrown).</summary>
    bool Send(ReadOnlySpan<byte> packet, uint destination);

    /// <summary>
    /// Sends a datagram the kernel must still finish: its TCP checksum and, for a super-packet, its
    /// cutting into segments. A sender that cannot hand such packets to the kernel refuses them.
    /// </summary>
    bool Send(ReadOnlySpan<byte> packet, uint destination, SendOffload offload) =>
        offload.IsNone && Send(packet, destination);
}

/// <summary>A monotonic clock, injected so that expiry is tested without sleeping.</summary>
public interface IClock
{
    long NowMilliseconds { get; }
}

public sealed class SystemClock : IClock
{
    public static readonly SystemClock Instance = new();
    public long NowMilliseconds => Environment.TickCount64;
}
