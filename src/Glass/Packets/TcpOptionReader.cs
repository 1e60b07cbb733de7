namespace Glass.Packets;

/// <summary>
/// Walks a TCP option list (RFC 9293 3.2). Every step advances by at least one byte, so any input terminates.
/// <code>
/// EOL:  +--------+          NOP:  +--------+
///       |00000000|                |00000001|
///       +--------+                +--------+
/// other: +--------+--------+---...---+
///        |  kind  | length |  data   |   length counts kind and length bytes, so >= 2
///        +--------+--------+---...---+
/// </code>
/// </summary>
internal ref struct TcpOptionReader
{
    private const int KindOffset = 0;
    private const int LengthOffset = 1;
    private const int MinLength = 2;

    private ReadOnlySpan<byte> _rest;

    public TcpOptionReader(ReadOnlySpan<byte> options) => _rest = options;

    /// <summary>
    /// Reads the next option other than NOP. <paramref name="body"/> is the whole option, kind and length included.
    /// Returns <see cref="TcpOptionStep.End"/> at EOL or end of span, <see cref="TcpOptionStep.Malformed"/> when
    /// a length byte is missing, below 2, or runs past the span.
    /// </summary>
    public TcpOptionStep Next(out byte kind, out ReadOnlySpan<byte> body)
    {
        body = default;
        kind = TcpOptionKind.EndOfList;
        while (true)
        {
            if (_rest.Length <= KindOffset)
                return TcpOptionStep.End;
            kind = _rest[KindOffset];
            if (kind == TcpOptionKind.EndOfList)
            {
                _rest = default; // everything after EOL is padding
                return TcpOptionStep.End;
            }
            if (kind == TcpOptionKind.Nop)
            {
                _rest = _rest[1..];
                continue;
            }
            if (_rest.Length <= LengthOffset)
                return Fail();
            int length = _rest[LengthOffset];
            if (length < MinLength || length > _rest.Length)
                return Fail();
            body = _rest[..length];
            _rest = _rest[length..];
            return TcpOptionStep.Option;
        }
    }

    private TcpOptionStep Fail()
    {
        _rest = default;
        return TcpOptionStep.Malformed;
    }
}

internal enum TcpOptionStep
{
    Option,
    End,
    Malformed,
}
