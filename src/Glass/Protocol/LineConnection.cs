using System.Net.Sockets;
using System.Text;

namespace Glass.Protocol;

/// <summary>
/// A connection that speaks newline-terminated ASCII lines (the controller's and the translator's
/// control protocols), on the socket itself or on a stream over it (TLS). A line longer than the
/// limit is a protocol error, so garbage cannot grow memory.
/// </summary>
public sealed class LineConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly Stream? _stream;
    private readonly byte[] _buffer;
    private int _start, _end;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public LineConnection(Socket socket, int maxLineLength = 1024)
    {
        _socket = socket;
        _buffer = new byte[maxLineLength + 1];
    }

    /// <summary>Lines carried by <paramref name="stream"/> (an SslStream over <paramref name="socket"/>), which this connection owns.</summary>
    public LineConnection(Socket socket, Stream stream, int maxLineLength) : this(socket, maxLineLength) => _stream = stream;

    /// <summary>The socket underneath, for its addresses (and to abort it).</summary>
    public Socket Socket => _socket;

    /// <summary>Whether the lines travel inside TLS.</summary>
    public bool IsEncrypted => _stream is System.Net.Security.SslStream;

    private ValueTask<int> ReceiveAsync(Memory<byte> into, CancellationToken ct) =>
        _stream is null ? _socket.ReceiveAsync(into, SocketFlags.None, ct) : _stream.ReadAsync(into, ct);

    /// <summary>Reads one line without its terminator; null at end of stream.</summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var nl = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (nl >= 0)
            {
                var end = nl > _start && _buffer[nl - 1] == '\r' ? nl - 1 : nl;
                var line = Encoding.ASCII.GetString(_buffer, _start, end - _start);
                _start = nl + 1;
                return line;
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length)
                throw new ProtocolException("line-too-long", $"A line exceeded {_buffer.Length - 1} bytes.");
            var n = await ReceiveAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (_end > 0)
                    throw new ProtocolException("truncated", "The connection closed in the middle of a line.");
                return null;
            }
            _end += n;
        }
    }

    /// <summary>
    /// Waits until at least <paramref name="count"/> bytes are buffered (fewer only at end of
    /// stream) and returns them without consuming them, so a caller can tell protocols apart.
    /// </summary>
    public async ValueTask<ReadOnlyMemory<byte>> PeekAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            while (_end - _start < count)
            {
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }
                var n = await ReceiveAsync(_buffer.AsMemory(_end), cts.Token).ConfigureAwait(false);
                if (n == 0)
                    break;
                _end += n;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProtocolException("timeout", $"No complete request arrived within {timeout.TotalSeconds:0.#} s.");
        }
        return _buffer.AsMemory(_start, Math.Min(count, _end - _start));
    }

    /// <summary>Drops <paramref name="count"/> buffered bytes (after <see cref="PeekAsync"/>).</summary>
    public void Consume(int count) => _start += Math.Min(count, _end - _start);

    /// <summary>Writes raw bytes (the original design's binary messages).</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_stream is not null)
            {
                await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                return;
            }
            var sent = 0;
            while (sent < bytes.Length)
                sent += await _socket.SendAsync(bytes[sent..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Reads one line, failing when none arrives within <paramref name="timeout"/>.</summary>
    public async ValueTask<string?> ReadLineAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            return await ReadLineAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProtocolException("timeout", $"No complete line arrived within {timeout.TotalSeconds:0.#} s.");
        }
    }

    public ValueTask WriteLineAsync(string line, CancellationToken cancellationToken) =>
        WriteAsync(Encoding.ASCII.GetBytes(line + "\n"), cancellationToken);

    public void Dispose()
    {
        _stream?.Dispose();
        _socket.Dispose();
        _writeLock.Dispose();
    }
}

/// <summary>A peer broke the line protocol; the code is stable and the message names the cause.</summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException(string code, string message) : base(message) => Code = code;

    public string Code { get; }
}
