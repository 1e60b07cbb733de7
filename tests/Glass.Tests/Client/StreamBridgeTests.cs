using System.Net;
using System.Net.Sockets;
using System.Text;
using Glass.Client;

namespace Glass.Tests.Client;

public class StreamBridgeTests
{
    /// <summary>Standard input of a terminal: a read that never ends and does not heed cancellation.</summary>
    private sealed class StuckInput : Stream
    {
        private readonly TaskCompletionSource<int> _never = new();
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(_never.Task);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => _never.Task.GetAwaiter().GetResult();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task TheBridgeEndsWithTheConnectionEvenWhenItsInputNeverDoes()
    {
        using var endpoint = new TcpListener(IPAddress.Loopback, 0);
        endpoint.Start();
        var output = new MemoryStream();
        var bridge = StreamBridge.RunAsync((IPEndPoint)endpoint.LocalEndpoint, new StuckInput(), output, CancellationToken.None);
        using (var peer = await endpoint.AcceptTcpClientAsync())
            await peer.GetStream().WriteAsync("hello"u8.ToArray()); // then closes

        var (sent, received) = await bridge.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(5, received);
        Assert.Equal(0, sent);
        Assert.Equal("hello", Encoding.ASCII.GetString(output.ToArray()));
    }

    [Fact]
    public async Task InputCrossesAndItsEndHalfClosesTheConnection()
    {
        using var endpoint = new TcpListener(IPAddress.Loopback, 0);
        endpoint.Start();
        var output = new MemoryStream();
        var bridge = StreamBridge.RunAsync((IPEndPoint)endpoint.LocalEndpoint, new MemoryStream("ping"u8.ToArray()), output, CancellationToken.None);
        using (var peer = await endpoint.AcceptTcpClientAsync())
        {
            var got = new MemoryStream();
            await peer.GetStream().CopyToAsync(got).WaitAsync(TimeSpan.FromSeconds(10)); // ends at the half-close
            await peer.GetStream().WriteAsync(got.ToArray());
        }
        var (sent, received) = await bridge.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((4, 4), (sent, received));
        Assert.Equal("ping", Encoding.ASCII.GetString(output.ToArray()));
    }
}
