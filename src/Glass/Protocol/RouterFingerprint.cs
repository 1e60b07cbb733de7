using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Glass.Protocol;

/// <summary>
/// A router's identity as users pin it: "sha256:" and the SHA-256 of its certificate's
/// SubjectPublicKeyInfo in lowercase hex. Hashing the key, not the certificate, keeps the pin
/// valid when the certificate is renewed with the same key, and matches what
/// <c>openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum</c> prints.
/// </summary>
public static class RouterFingerprint
{
    public const string Prefix = "sha256:";

    /// <summary>The fingerprint of <paramref name="certificate"/>'s public key.</summary>
    public static string Of(X509Certificate certificate)
    {
        if (certificate is X509Certificate2 c2)
            return Of(c2.PublicKey);
        // Only a copy made here is disposed: the caller's certificate stays usable.
        using var copy = new X509Certificate2(certificate);
        return Of(copy.PublicKey);
    }

    private static string Of(PublicKey key) => Prefix + Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    /// <summary>
    /// Reads a fingerprint as a user may write it: with or without "sha256:", hex in either case,
    /// bytes optionally separated by colons. Returns the canonical form.
    /// </summary>
    public static bool TryNormalize(string? text, out string fingerprint)
    {
        fingerprint = "";
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var s = text.Trim();
        if (s.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
            s = s[Prefix.Length..];
        s = s.Replace(":", "", StringComparison.Ordinal);
        if (s.Length != 64 || !s.All(Uri.IsHexDigit))
            return false;
        fingerprint = Prefix + s.ToLowerInvariant();
        return true;
    }

    /// <summary>The canonical form, or a <see cref="GlassException"/> that says what one looks like.</summary>
    public static string Normalize(string text) =>
        TryNormalize(text, out var f)
            ? f
            : throw new GlassException(GlassErrors.BadRequest,
                $"'{text}' is not a router fingerprint: expected sha256: and 64 hex characters, as Start-GlassController and Get-GlassRouterStatus show it.");
}
