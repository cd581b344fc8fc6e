using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace SharedEntities.Memcached;

/// <summary>
/// TLS settings of <see cref="MemcachedClientOptions.Tls"/>, as <see cref="SslClientAuthenticationOptions"/> has them.
/// By default the server's certificate must be valid for the server's host name and chain to a root the system
/// trusts.
/// </summary>
public sealed class MemcachedTlsOptions
{
    /// <summary>
    /// The name the server's certificate must be issued for; null (the default) for each server's own host as written
    /// in <see cref="MemcachedClientOptions.Servers"/> (a name, or an IP address that the certificate lists).
    /// </summary>
    public string? TargetHost { get; set; }

    /// <summary>
    /// Certificates to trust as roots instead of the system's store: a private CA, or a server's self-signed
    /// certificate. The server's certificate must chain to one of them (and still match <see cref="TargetHost"/>).
    /// </summary>
    public X509Certificate2Collection? TrustedCertificates { get; set; }

    /// <summary>
    /// Decides whether the server's certificate is accepted, in place of the default check (which accepts it only with
    /// no <see cref="SslPolicyErrors"/>). It runs on every connect.
    /// </summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidationCallback { get; set; }

    /// <summary>Certificates to present when the server asks for one (memcached's <c>ssl_ca_cert</c> and <c>ssl_verify_mode</c>).</summary>
    public X509CertificateCollection? ClientCertificates { get; set; }

    /// <summary>The TLS versions allowed: <see cref="SslProtocols.None"/> (the default) lets the system choose; else TLS 1.2, TLS 1.3 or both.</summary>
    public SslProtocols EnabledProtocols { get; set; } = SslProtocols.None;

    /// <summary>Whether the server's certificate is checked for revocation. Default: <see cref="X509RevocationMode.NoCheck"/>, as .NET's.</summary>
    public X509RevocationMode CertificateRevocationCheckMode { get; set; } = X509RevocationMode.NoCheck;

    /// <summary>A copy of these settings, with collections of their own (the certificates themselves are shared).</summary>
    internal MemcachedTlsOptions Copy() => new()
    {
        TargetHost = TargetHost,
        TrustedCertificates = TrustedCertificates is null ? null : [.. TrustedCertificates],
        RemoteCertificateValidationCallback = RemoteCertificateValidationCallback,
        ClientCertificates = ClientCertificates is null ? null : new X509CertificateCollection(ClientCertificates),
        EnabledProtocols = EnabledProtocols,
        CertificateRevocationCheckMode = CertificateRevocationCheckMode,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that is out of range.</summary>
    public void Validate()
    {
        if (TargetHost is not null && (TargetHost.Length == 0 || TargetHost.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))))
        {
            throw new ArgumentException("Tls.TargetHost must be null (each server's host) or a host name without spaces.", "Tls.TargetHost");
        }

        if ((EnabledProtocols & ~(SslProtocols.Tls12 | SslProtocols.Tls13)) != 0)
        {
            throw new ArgumentException(
                $"Tls.EnabledProtocols must be None (the system's choice), Tls12, Tls13 or both; it is {EnabledProtocols}.", "Tls.EnabledProtocols");
        }

        if (!Enum.IsDefined(CertificateRevocationCheckMode))
        {
            throw new ArgumentException($"Tls.CertificateRevocationCheckMode must be NoCheck, Online or Offline; it is {CertificateRevocationCheckMode}.", "Tls.CertificateRevocationCheckMode");
        }

        if (TrustedCertificates is { Count: 0 })
        {
            throw new ArgumentException("Tls.TrustedCertificates must be null (the system's roots) or hold at least one certificate.", "Tls.TrustedCertificates");
        }
    }
}
