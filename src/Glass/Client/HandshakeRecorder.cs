namespace Glass.Client;

/// <summary>
/// The client's stream under TLS, keeping the first bytes the controller sent: when the handshake
/// fails, they tell a plain "ERR code text" refusal (a controller refuses an address over its
/// connection limit before any handshake) from a peer that speaks no TLS at all.
/// </summary>
internal sealed class HandshakeRecorder : Stream
{
    private const int Keep = 512;
    private readonly Stream _inner;
    private readonly byte[] _first = new byte[Keep];
    private int _kept;

    public HandshakeRecorder(Stream inner) => _inner = inner;

    /// <summary>The first line the peer sent when it is a plain ERR answer, else null.</summary>
    public string? PlainRefusal()
    {
        var span = _first.AsSpan(0, _kept);
        var nl = span.IndexOf((byte)'\n');
        if (!span.StartsWith("ERR "u8) || nl < 0)
            return null;
        var line = span[..nl].TrimEnd((byte)'\r');
        foreach (var b in line)
        {
            if (b is < 0x20 or > 0x7e)
                return null;
        }
        return System.Text.Encoding.ASCII.GetString(line);
    }

    private int Record(ReadOnlySpan<byte> read)
    {
        var n = Math.Min(read.Length, Keep - _kept);
        read[..n].CopyTo(_first.AsSpan(_kept));
        _kept += n;
        return read.Length;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return _kept < Keep ? Record(buffer.Span[..n]) : n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = _inner.Read(buffer, offset, count);
        return _kept < Keep ? Record(buffer.AsSpan(offset, n)) : n;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _inner.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _inner.WriteAsync(buffer, offset, count, cancellationToken);
    public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);
    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);
    public override void Flush() => _inner.Flush();
    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _inner.Dispose();
        base.Dispose(disposing);
    }
}
