using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SharedEntities.Memcached.Tests;

/// <summary>
/// A self-signed certificate for 127.0.0.1 and localhost, made by the test, and a memcached auth file, written to a
/// temp folder of their own (PEM, as memcached reads them) that <see cref="Dispose"/> deletes.
/// </summary>
public sealed class TlsMaterial : IDisposable
{
    public const string Username = "sheets";

    public TlsMaterial()
    {
        Folder = Directory.CreateTempSubdirectory("sharedentities-tls-").FullName;
        Password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest("CN=sharedentities-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.KeyCertSign, critical: false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false)); // server authentication
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 withKey = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        Certificate = X509CertificateLoader.LoadCertificate(withKey.Export(X509ContentType.Cert));

        CertificateFile = Write("cert.pem", Certificate.ExportCertificatePem());
        KeyFile = Write("key.pem", key.ExportPkcs8PrivateKeyPem());
        AuthFile = Write("auth", $"{Username}:{Password}\n");
    }

    public string Folder { get; }

    /// <summary>A password made for this run.</summary>
    public string Password { get; }

    /// <summary>The certificate, without its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public string CertificateFile { get; }

    public string KeyFile { get; }

    public string AuthFile { get; }

    /// <summary>memcached's arguments for TLS with this certificate.</summary>
    public string[] TlsArguments => ["-Z", "-o", $"ssl_chain_cert={CertificateFile},ssl_key={KeyFile}"];

    /// <summary>memcached's arguments for authentication with this auth file.</summary>
    public string[] AuthArguments => ["-Y", AuthFile];

    public void Dispose()
    {
        Certificate.Dispose();
        Directory.Delete(Folder, recursive: true);
    }

    // memcached drops root for 'nobody', which must be able to read the files (a test key; deleted after the run).
    private string Write(string name, string text)
    {
        string path = Path.Combine(Folder, name);
        File.WriteAllText(path, text);
        if (OperatingSystem.IsWindows())
        {
            return path; // memcached runs on Linux here; nothing to open up
        }

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.SetUnixFileMode(Folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        return path;
    }
}

/// <summary>A memcached that requires TLS (with a <see cref="TlsMaterial"/> certificate) and authentication.</summary>
public sealed class SecureMemcached : IDisposable
{
    public SecureMemcached()
    {
        Material = new TlsMaterial();
        try
        {
            Server = MemcachedServer.WithArguments([.. Material.TlsArguments, .. Material.AuthArguments]);
        }
        catch
        {
            Material.Dispose();
            throw;
        }
    }

    public TlsMaterial Material { get; }

    public MemcachedServer Server { get; }

    /// <summary>Options that reach the server: TLS trusting the test's certificate, and the right credentials.</summary>
    public void Configure(MemcachedClientOptions options)
    {
        options.Tls = new MemcachedTlsOptions { TrustedCertificates = [Material.Certificate] };
        options.Username = TlsMaterial.Username;
        options.Password = Material.Password;
        options.ConnectTimeout = TimeSpan.FromSeconds(10);
        options.OperationTimeout = TimeSpan.FromSeconds(10);
    }

    /// <summary>One statistic from <c>stats</c>, asked over TLS with the credentials (the plain <see cref="MemcachedServer.Stat"/> cannot).</summary>
    public long Stat(string name)
    {
        using var client = new TcpClient();
        client.Connect(IPAddress.Loopback, Server.Port);
        client.ReceiveTimeout = client.SendTimeout = 5000;
        string expected = Material.Certificate.GetCertHashString();
        using var tls = new SslStream(client.GetStream(), false, (_, certificate, _, _) => certificate?.GetCertHashString() == expected);
        tls.AuthenticateAsClient("127.0.0.1");
        string credentials = $"{TlsMaterial.Username} {Material.Password}";
        tls.Write(System.Text.Encoding.ASCII.GetBytes($"set auth 0 -1 {credentials.Length}\r\n{credentials}\r\nstats\r\n"));
        var reply = new System.Text.StringBuilder();
        byte[] buffer = new byte[16 * 1024];
        for (int reads = 0; reads < 1000 && !reply.ToString().EndsWith("END\r\n", StringComparison.Ordinal); reads++)
        {
            int read = tls.Read(buffer);
            if (read == 0)
            {
                break;
            }

            reply.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
        }

        string prefix = $"STAT {name} ";
        string line = reply.ToString().Split("\r\n").FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"memcached has no statistic '{name}': {reply}");
        return long.Parse(line[prefix.Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        Server.Dispose();
        Material.Dispose();
    }
}
