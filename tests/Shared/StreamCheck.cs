using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace Glass.Testing;

/// <summary>
/// How a traffic peer makes and checks a bulk stream. <c>sha256</c> (the tests' default): SHA-256
/// of a fully pseudo-random stream. <c>xxh3</c> (benchmarks): XXH3-64 of one seeded random chunk
/// repeated, each copy stamped with its index, so a misplaced, lost or repeated chunk still
/// changes the digest. SHA-256 and the generator cost ~0.9 ns a byte at each end and would cap a
/// 2-core path near 5 Gbit/s; the fast pair costs ~0.05.
/// </summary>
internal sealed class StreamCheck : IDisposable
{
    public const string Sha256 = "sha256", Xxh3 = "xxh3";

    private readonly IncrementalHash? _sha;
    private readonly XxHash3? _xxh;

    private StreamCheck(string name)
    {
        if (name == Sha256)
            _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        else
            _xxh = new XxHash3();
    }

    public static bool IsKnown(string name) => name is Sha256 or Xxh3;

    public static StreamCheck Create(string name) =>
        IsKnown(name) ? new StreamCheck(name) : throw new ArgumentException($"unknown digest '{name}' (expected {Sha256} or {Xxh3})", nameof(name));

    /// <summary>The JSON field suffix for a digest: sentSha256, receivedXxh3.</summary>
    public static string FieldSuffix(string name) => name == Sha256 ? "Sha256" : "Xxh3";

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_sha is not null)
            _sha.AppendData(data);
        else
            _xxh!.Append(data);
    }

    public byte[] GetHashAndReset() => _sha is not null ? _sha.GetHashAndReset() : _xxh!.GetHashAndReset();

    /// <summary>
    /// The fast stream: <paramref name="chunk"/> holds the seeded random chunk (filled once);
    /// this stamps copy number <paramref name="index"/> into its first 8 bytes.
    /// </summary>
    public static void StampChunk(Span<byte> chunk, long index) => BinaryPrimitives.WriteInt64LittleEndian(chunk, index);

    public void Dispose() => _sha?.Dispose();
}
