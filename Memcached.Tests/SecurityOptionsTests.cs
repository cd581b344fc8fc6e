using Microsoft.Extensions.Logging.Testing;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

using static SharedEntities.Memcached.Tests.TestSupport;

namespace SharedEntities.Memcached.Tests;

/// <summary>TLS and credential settings are validated with messages that name the setting and never show the password.</summary>
public sealed class SecurityOptionsTests
{
    private const string Secret = "pa55-w0rd";

    public static TheoryData<string, string> BadSettings() => new()
    {
        { "username without password", "Password" },
        { "password without username", "Username" },
        { "username with a space", "Username" },
        { "username with a colon", "Username" },
        { "password with a space", "Password" },
        { "password with a control character", "Password" },
        { "credentials too long", "Password" },
        { "empty target host", "Tls.TargetHost" },
        { "TLS 1.1", "Tls.EnabledProtocols" },
        { "undefined revocation mode", "Tls.CertificateRevocationCheckMode" },
        { "empty trusted certificates", "Tls.TrustedCertificates" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_bad_setting_is_refused_naming_it_and_without_the_password(string setting, string name)
    {
        var options = new MemcachedClientOptions { Username = "user", Password = Secret };
        switch (setting)
        {
            case "username without password": options.Password = null; break;
            case "password without username": options.Username = null; break;
            case "username with a space": options.Username = "us er"; break;
            case "username with a colon": options.Username = "us:er"; break;
            case "password with a space": options.Password = Secret + " x"; break;
            case "password with a control character": options.Password = Secret + "\r\n"; break;
            case "credentials too long": options.Password = Secret + new string('x', 200); break;
            case "empty target host": options.Tls = new MemcachedTlsOptions { TargetHost = " " }; break;
            case "TLS 1.1":
#pragma warning disable SYSLIB0039, CA5397 // the obsolete protocol is what is being refused
                options.Tls = new MemcachedTlsOptions { EnabledProtocols = SslProtocols.Tls11 | SslProtocols.Tls12 };
#pragma warning restore SYSLIB0039, CA5397
                break;
            case "undefined revocation mode": options.Tls = new MemcachedTlsOptions { CertificateRevocationCheckMode = (X509RevocationMode)7 }; break;
            case "empty trusted certificates": options.Tls = new MemcachedTlsOptions { TrustedCertificates = [] }; break;
            default: throw new ArgumentOutOfRangeException(nameof(setting));
        }

        ArgumentException error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal(name, error.ParamName);
        Assert.StartsWith(name, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new MemcachedStore(options));
    }

    [Fact]
    public void Good_settings_pass_and_ToString_shows_no_credentials()
    {
        var options = new MemcachedClientOptions
        {
            Username = "user",
            Password = Secret,
            Tls = new MemcachedTlsOptions { EnabledProtocols = SslProtocols.Tls12 | SslProtocols.Tls13, TargetHost = "cache.internal" },
        };
        options.Validate();
        string text = options.ToString();
        Assert.DoesNotContain(Secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain("user", text, StringComparison.Ordinal);
        Assert.Contains("Tls=on, Authentication=on", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Credentials_without_tls_are_warned_about()
    {
        var logger = new FakeLogger<MemcachedStore>();
        using var store = new MemcachedStore(new MemcachedClientOptions { Username = "user", Password = Secret }, logger);
        Assert.True(Logged(logger, "without TLS"));
    }

    [Fact]
    public void The_authentication_command_expires_at_once_on_a_server_that_does_not_authenticate()
    {
        var security = ConnectionSecurity.From(new MemcachedClientOptions { Username = "user", Password = Secret });
        byte[] buffer = new byte[256];
        int length = security.WriteAuthentication(buffer);
        Assert.Equal($"set {ConnectionSecurity.AuthenticationKey} 0 -1 14\r\nuser {Secret}\r\n", System.Text.Encoding.ASCII.GetString(buffer, 0, length));
    }
}
