using Glass.Packets;

namespace Glass.Tests.Packets;

public class TcpSynOptionsTests
{
    private static TcpSynOptions Parse(params byte[] options)
    {
        Assert.True(TcpSynOptions.TryParse(options, out var o), "expected options to parse");
        return o;
    }

    private static void AssertEmpty(TcpSynOptions o)
    {
        Assert.Equal((ushort)0, o.Mss);
        Assert.Equal((sbyte)-1, o.WindowScale);
        Assert.False(o.SackPermitted);
        Assert.False(o.HasTimestamps);
        Assert.Equal(0u, o.TsVal);
        Assert.Equal(0u, o.TsEcr);
        Assert.False(o.HasFastOpen);
        Assert.False(o.HasMptcp);
    }

    [Fact]
    public void EmptyListHasNothing() => AssertEmpty(Parse());

    [Fact]
    public void EmptyValueMarksAbsence() => AssertEmpty(TcpSynOptions.Empty);

    [Fact]
    public void ParsesEveryKnownKind()
    {
        var o = Parse(
            2, 4, 0x05, 0xB4,                       // MSS 1460
            1, 3, 3, 9,                             // NOP, WS 9
            4, 2,                                   // SACK-OK
            8, 10, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, // TS
            30, 4, 0x00, 0x81,                      // MPTCP MP_CAPABLE v1
            34, 2);                                 // TFO cookie request
        Assert.Equal((ushort)1460, o.Mss);
        Assert.Equal((sbyte)9, o.WindowScale);
        Assert.True(o.SackPermitted);
        Assert.True(o.HasTimestamps);
        Assert.Equal(0xDEADBEEFu, o.TsVal);
        Assert.Equal(0x01020304u, o.TsEcr);
        Assert.True(o.HasMptcp);
        Assert.True(o.HasFastOpen);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(7, 7)]
    [InlineData(14, 14)]
    [InlineData(15, 14)]
    [InlineData(200, 14)]
    [InlineData(255, 14)]
    public void WindowScaleIsClampedTo14(int wire, int expected)
    {
        Assert.Equal((sbyte)expected, Parse(3, 3, (byte)wire).WindowScale);
    }

    [Theory]
    [InlineData(34, 2)]
    [InlineData(34, 10)]
    [InlineData(34, 18)]
    public void FastOpenKind34AnyLength(int kind, int length)
    {
        byte[] opt = new byte[length];
        opt[0] = (byte)kind;
        opt[1] = (byte)length;
        Assert.True(Parse(opt).HasFastOpen);
    }

    [Fact]
    public void FastOpenExperimentalNeedsMagic()
    {
        Assert.True(Parse(254, 4, 0xF9, 0x89).HasFastOpen);
        Assert.True(Parse(254, 12, 0xF9, 0x89, 1, 2, 3, 4, 5, 6, 7, 8).HasFastOpen);
        Assert.True(Parse(253, 4, 0xF9, 0x89).HasFastOpen); // RFC 6994: either experimental kind
        Assert.False(Parse(254, 4, 0x89, 0xF9).HasFastOpen);
        Assert.False(Parse(254, 4, 0x00, 0x00).HasFastOpen);
        Assert.False(Parse(254, 3, 0xF9, 0, 0).HasFastOpen);  // too short to hold the ExID
        Assert.False(Parse(254, 2).HasFastOpen);
        Assert.False(Parse(252, 4, 0xF9, 0x89).HasFastOpen);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(12)]
    [InlineData(20)]
    public void MptcpAnyLength(int length)
    {
        byte[] opt = new byte[length];
        opt[0] = 30;
        opt[1] = (byte)length;
        var o = Parse(opt);
        Assert.True(o.HasMptcp);
        Assert.False(o.HasFastOpen);
    }

    [Fact]
    public void KnownKindsWithWrongLengthAreSkipped()
    {
        var o = Parse(
            2, 3, 0x05,                 // MSS length 3
            2, 5, 0x05, 0xB4, 0xFF,     // MSS length 5
            3, 2,                       // WS length 2
            3, 4, 7, 0,                 // WS length 4
            4, 3, 0,                    // SACK-OK length 3
            8, 8, 1, 2, 3, 4, 5, 6,     // TS length 8
            8, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, // TS length 12
            2, 4, 0x02, 0x18);          // valid MSS afterwards still found
        Assert.Equal((ushort)536, o.Mss);
        Assert.Equal((sbyte)-1, o.WindowScale);
        Assert.False(o.SackPermitted);
        Assert.False(o.HasTimestamps);
    }

    [Fact]
    public void UnknownKindsAreSkipped()
    {
        var o = Parse(99, 5, 2, 4, 5, 3, 3, 6, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 4, 2);
        Assert.Equal((sbyte)6, o.WindowScale);   // the MSS-looking bytes inside kind 99 were not parsed
        Assert.Equal((ushort)0, o.Mss);
        Assert.True(o.SackPermitted);             // kind 5 (SACK blocks) skipped, SACK-OK after it read
    }

    [Fact]
    public void EndOfListStopsParsingAndTrailingGarbageIsIgnored()
    {
        var o = Parse(2, 4, 0x05, 0xB4, 0, 3, 3, 7, 0xFF, 0x00, 0x01);
        Assert.Equal((ushort)1460, o.Mss);
        Assert.Equal((sbyte)-1, o.WindowScale);

        // Bytes after EOL that would be malformed are padding, not an error.
        Assert.True(TcpSynOptions.TryParse([0, 2, 0], out var e));
        AssertEmpty(e);
        Assert.True(TcpSynOptions.TryParse([1, 1, 0, 9], out _));
    }

    [Fact]
    public void NopOnlyAndLongNopRunsTerminate()
    {
        AssertEmpty(Parse(Enumerable.Repeat((byte)1, 40).ToArray()));
        AssertEmpty(Parse(Enumerable.Repeat((byte)1, 100_000).ToArray()));
        Assert.Equal((sbyte)2, Parse([.. Enumerable.Repeat((byte)1, 37), 3, 3, 2]).WindowScale);
    }

    [Theory]
    [InlineData(new byte[] { 2, 0, 5, 0xB4 })]              // length 0: would loop forever if trusted
    [InlineData(new byte[] { 2, 1, 5, 0xB4 })]              // length 1
    [InlineData(new byte[] { 1, 1, 99, 0 })]                // unknown kind, length 0
    [InlineData(new byte[] { 2, 4, 5 })]                    // MSS overruns
    [InlineData(new byte[] { 8, 10, 1, 2, 3, 4, 5, 6 })]    // TS overruns
    [InlineData(new byte[] { 99, 40, 1 })]                  // unknown overruns
    [InlineData(new byte[] { 2 })]                          // lone kind, no length byte
    [InlineData(new byte[] { 1, 1, 1, 3 })]                 // kind at the end
    [InlineData(new byte[] { 4, 2, 3, 3, 7, 34 })]          // good options, then a truncated one
    public void MalformedListsAreRejected(byte[] options)
    {
        Assert.False(TcpSynOptions.TryParse(options, out var o));
        AssertEmpty(o);
        Assert.False(TcpTimestamps.TryFind(options, out _, out _));
    }

    [Fact]
    public void RepeatedKindLastWins()
    {
        var o = Parse(2, 4, 0x05, 0xB4, 2, 4, 0x02, 0x18);
        Assert.Equal((ushort)536, o.Mss);
    }

    [Fact]
    public void OptionFillingTheSpanExactlyParses()
    {
        byte[] opt = new byte[40];
        opt[0] = 99;
        opt[1] = 40;
        AssertEmpty(Parse(opt));
    }
}

public class TcpTimestampsTests
{
    [Fact]
    public void FindsTimestampsAmongOtherOptions()
    {
        byte[] opts = [1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        Assert.True(TcpTimestamps.TryFind(opts, out uint val, out uint ecr));
        Assert.Equal(0x11223344u, val);
        Assert.Equal(0x55667788u, ecr);
    }

    [Fact]
    public void TypicalDataSegmentLayout()
    {
        byte[] opts = [1, 1, 8, 10, 0, 0, 0, 7, 0xFF, 0xFF, 0xFF, 0xFF];
        Assert.True(TcpTimestamps.TryFind(opts, out uint val, out uint ecr));
        Assert.Equal(7u, val);
        Assert.Equal(uint.MaxValue, ecr);
    }

    [Fact]
    public void AbsentReturnsFalseAndZeros()
    {
        Assert.False(TcpTimestamps.TryFind([], out uint val, out uint ecr));
        Assert.Equal(0u, val);
        Assert.Equal(0u, ecr);
        Assert.False(TcpTimestamps.TryFind([1, 1, 4, 2, 2, 4, 5, 0xB4], out _, out _));
    }

    [Fact]
    public void WrongLengthTimestampIsSkippedAndAValidOneStillFound()
    {
        byte[] opts = [8, 6, 1, 2, 3, 4, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4];
        Assert.True(TcpTimestamps.TryFind(opts, out uint val, out uint ecr));
        Assert.Equal(3u, val);
        Assert.Equal(4u, ecr);
        Assert.False(TcpTimestamps.TryFind([8, 6, 1, 2, 3, 4], out _, out _));
    }

    [Fact]
    public void TimestampAfterEndOfListIsNotFound()
    {
        Assert.False(TcpTimestamps.TryFind([1, 0, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4], out _, out _));
    }

    [Fact]
    public void MalformedBeforeTimestampHidesIt()
    {
        Assert.False(TcpTimestamps.TryFind([99, 1, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4], out _, out _));
    }
}
