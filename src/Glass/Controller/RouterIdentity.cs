using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Glass.Protocol;

namespace Glass.Controller;

/// <summary>
/// The router's key pair and certificate, which the controller presents in TLS and clients pin by
/// <see cref="Fingerprint"/>. Generated on first start (ECDSA P-256, self-signed: nobody validates
/// a chain, the pin is the trust) into one owner-only PEM file, and read from there afterwards;
/// or an operator's own certificate and key (tls.certificate, tls.key).
/// </summary>
public sealed class RouterIdentity : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private RouterIdentity(X509Certificate2 certificate, string? path, bool created)
    {
        Certificate = certificate;
        Path = path;
        Created = created;
        Fingerprint = RouterFingerprint.Of(certificate);
        // Offline: a self-signed certificate has no chain to fetch.
        Context = SslStreamCertificateContext.Create(certificate, null, offline: true);
    }

    public X509Certificate2 Certificate { get; }
    /// <summary>The file it came from, or null for a key made for this run only.</summary>
    public string? Path { get; }
    /// <summary>Whether this start generated the key.</summary>
    public bool Created { get; }
    public string Fingerprint { get; }
    internal SslStreamCertificateContext Context { get; }

    /// <summary>
    /// Where a controller on <paramref name="port"/> keeps its key unless told, beside its registry
    /// (<see cref="ControllerOptions.StateFile"/>). Port 0 (a new port each time) gets a key for
    /// that run only: null.
    /// </summary>
    public static string? DefaultPath(int port) => ControllerOptions.StateFile(port, "pem");

    /// <summary>A key for this run only (tests, port 0): clients can pin it only while it runs.</summary>
    public static RouterIdentity Ephemeral() => new(Generate(), null, created: true);

    /// <summary>
    /// The identity in <paramref name="certificatePath"/> (a PEM certificate, with its private key
    /// there too unless <paramref name="keyPath"/> names the key's own file). A missing certificate
    /// file without a key path is created, with a new key, readable by its owner only.
    /// <paramref name="warn"/> hears of a key file others may read.
    /// </summary>
    public static RouterIdentity LoadOrCreate(string certificatePath, string? keyPath = null, Action<string>? warn = null)
    {
        if (keyPath is null && !File.Exists(certificatePath))
        {
            if (TryCreate(certificatePath) is { } made)
                return new RouterIdentity(made, certificatePath, created: true);
            // Another controller made it first: use theirs.
        }
        var key = keyPath ?? certificatePath;
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            if (!certificate.HasPrivateKey)
                throw new GlassException("tls-key-unavailable", $"{certificatePath} holds no private key; name it with tls.key.");
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(key) & ~(OwnerOnly | UnixFileMode.UserExecute)) != 0)
                warn?.Invoke($"The router's private key {key} can be read by others than its owner: anyone who reads it can impersonate this router. Run: chmod 600 '{key}'.");
            return new RouterIdentity(certificate, certificatePath, created: false);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new GlassException("tls-key-unavailable",
                $"The router's certificate and key cannot be read from {(keyPath is null ? certificatePath : $"{certificatePath} and {keyPath}")}: {e.Message}. "
                + "Fix or remove the file (a missing one is generated anew, and clients must then pin the new fingerprint), or name others with tls.certificate and tls.key.", e);
        }
    }

    /// <summary>Writes a new certificate and key to <paramref name="path"/> in one step; null when the file appeared meanwhile.</summary>
    private static X509Certificate2? TryCreate(string path)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        var certificate = Generate();
        try
        {
            if (!Directory.Exists(dir))
            {
                if (OperatingSystem.IsWindows())
                    Directory.CreateDirectory(dir);
                else
                    Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = OwnerOnly;
            using (var w = new StreamWriter(temp, System.Text.Encoding.ASCII, options))
            {
                w.Write(certificate.ExportCertificatePem());
                w.Write('\n');
                w.Write(certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
                w.Write('\n');
            }
            // Not over a file another controller wrote meanwhile: both must present the same key.
            File.Move(temp, path, overwrite: false);
            return certificate;
        }
        catch (IOException) when (File.Exists(path))
        {
            certificate.Dispose();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            certificate.Dispose();
            throw new GlassException("tls-key-unavailable",
                $"The router's key cannot be written to {path}: {e.Message}. Name a writable place with tls.certificate in the router's config.", e);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static X509Certificate2 Generate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=glass-router", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        var now = DateTimeOffset.UtcNow;
        // Clients pin the key and ignore dates; a long life means nothing expires under a running router.
        return request.CreateSelfSigned(now.AddDays(-1), now.AddYears(100));
    }

    public void Dispose() => Certificate.Dispose();
}
