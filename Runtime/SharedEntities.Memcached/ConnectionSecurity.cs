using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace SharedEntities.Memcached;

/// <summary>
/// What a connection does before its first command: the TLS handshake, and memcached's ASCII authentication (a
/// <c>set</c> whose data is <c>user password</c>). Built once per store from its options.
/// </summary>
internal sealed class ConnectionSecurity
{
    /// <summary>Plain TCP, no authentication.</summary>
    public static readonly ConnectionSecurity None = new(null, null, null);

    /// <summary>The key of the authentication <c>set</c>; the server ignores it when it authenticates.</summary>
    internal const string AuthenticationKey = "sharedentities:auth";

    private readonly MemcachedTlsOptions? _tls;
    private readonly byte[]? _credentials;

    private ConnectionSecurity(MemcachedTlsOptions? tls, string? username, string? password)
    {
        _tls = tls;
        _credentials = username is null ? null : Encoding.ASCII.GetBytes($"{username} {password}");
    }

    public static ConnectionSecurity From(MemcachedClientOptions options) =>
        options.Tls is null && options.Username is null ? None : new(options.Tls, options.Username, options.Password);

    public bool UsesTls => _tls is not null;

    public bool Authenticates => _credentials is not null;

    /// <summary>
    /// Writes the authentication command. Its expiry, -1, makes the item expire at once on a server that does not
    /// authenticate (which takes it for an ordinary set), so that the credentials never become a readable item.
    /// </summary>
    public int WriteAuthentication(Span<byte> destination)
    {
        byte[] credentials = _credentials ?? throw new InvalidOperationException("No credentials are set.");
        int length = Encoding.ASCII.GetBytes($"set {AuthenticationKey} 0 -1 {credentials.Length}\r\n", destination);
        credentials.CopyTo(destination[length..]);
        length += credentials.Length;
        "\r\n"u8.CopyTo(destination[length..]);
        return length + 2;
    }

    /// <summary>
    /// The handshake's settings for <paramref name="host"/>. <paramref name="refused"/> hears why a certificate was
    /// refused (the policy errors and the chain's status), so that the failure can say so.
    /// </summary>
    public SslClientAuthenticationOptions CreateTlsOptions(string host, Action<SslPolicyErrors, string> refused)
    {
        MemcachedTlsOptions tls = _tls ?? throw new InvalidOperationException("TLS is not enabled.");
        RemoteCertificateValidationCallback? decide = tls.RemoteCertificateValidationCallback;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = tls.TargetHost ?? host,
            ClientCertificates = tls.ClientCertificates,
            EnabledSslProtocols = tls.EnabledProtocols,
            CertificateRevocationCheckMode = tls.CertificateRevocationCheckMode,
            RemoteCertificateValidationCallback = (sender, certificate, chain, errors) =>
            {
                bool accepted;
                try
                {
                    accepted = decide?.Invoke(sender, certificate, chain, errors) ?? errors == SslPolicyErrors.None;
                }
                catch (Exception ex)
                {
                    // The store never throws: a callback that does refuses the certificate, and the message says why.
                    refused(errors, $"the RemoteCertificateValidationCallback threw {ex.GetType().Name}: {ex.Message}");
                    return false;
                }

                if (!accepted)
                {
                    refused(errors, Describe(chain));
                }

                return accepted;
            },
        };
        if (tls.TrustedCertificates is { } roots)
        {
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = tls.CertificateRevocationCheckMode,
            };
            policy.CustomTrustStore.AddRange(roots);
            options.CertificateChainPolicy = policy;
        }

        return options;
    }

    private static string Describe(X509Chain? chain)
    {
        if (chain is null || chain.ChainStatus.Length == 0)
        {
            return "";
        }

        return string.Join("; ", chain.ChainStatus.Select(s => $"{s.Status}: {s.StatusInformation.Trim()}"));
    }
}
