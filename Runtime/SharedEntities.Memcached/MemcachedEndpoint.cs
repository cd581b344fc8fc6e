using System.Globalization;

namespace SharedEntities.Memcached;

/// <summary>
/// One memcached server: host, port and its weight on the hash ring. A server list reads
/// <c>"10.0.0.1:11211,10.0.0.2:11211 2,[::1]:11212"</c>: entries separated by commas, the port optional (11211),
/// an optional weight after a space (1).
/// </summary>
public sealed record MemcachedEndpoint
{
    /// <summary>memcached's default port.</summary>
    public const int DefaultPort = 11211;

    /// <summary>Creates an endpoint.</summary>
    /// <param name="host">A host name or IP address (IPv6 without brackets).</param>
    /// <param name="port">The TCP port, 1–65535.</param>
    /// <param name="weight">The server's share of keys relative to the others, 1–1000.</param>
    public MemcachedEndpoint(string host, int port = DefaultPort, int weight = 1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        if (host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is ',' or '[' or ']'))
        {
            throw new ArgumentException($"The memcached host '{host}' contains a space, a control character, a comma or a bracket.", nameof(host));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThan(weight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(weight, 1000);
        Host = host;
        Port = port;
        Weight = weight;
        Address = host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";
    }

    /// <summary>The host name or IP address.</summary>
    public string Host { get; }

    /// <summary>The TCP port.</summary>
    public int Port { get; }

    /// <summary>The server's share of keys relative to the others.</summary>
    public int Weight { get; }

    /// <summary>
    /// Parses a server list. Throws <see cref="ArgumentException"/> naming the entry that is wrong: an empty entry, a
    /// bad port or weight, a server listed twice.
    /// </summary>
    public static IReadOnlyList<MemcachedEndpoint> ParseList(string servers)
    {
        ArgumentNullException.ThrowIfNull(servers);
        var endpoints = new List<MemcachedEndpoint>();
        string[] entries = servers.Split(',');
        for (int i = 0; i < entries.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(entries[i]))
            {
                throw new ArgumentException(
                    servers.Trim().Length == 0
                        ? "The memcached server list is empty; expected e.g. \"127.0.0.1:11211\"."
                        : $"Entry {i + 1} of the memcached server list \"{servers}\" is empty.",
                    nameof(servers));
            }

            MemcachedEndpoint endpoint = Parse(entries[i]);
            if (endpoints.Any(e => e.Address == endpoint.Address))
            {
                throw new ArgumentException($"The memcached server {endpoint.Address} is listed twice in \"{servers}\".", nameof(servers));
            }

            endpoints.Add(endpoint);
        }

        return endpoints;
    }

    /// <summary>Parses one entry: <c>host</c>, <c>host:port</c>, <c>[ipv6]:port</c>, each optionally followed by a space and a weight.</summary>
    public static MemcachedEndpoint Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string entry = text.Trim();
        string[] parts = entry.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is 0 or > 2)
        {
            throw new ArgumentException($"The memcached server \"{text}\" is not 'host', 'host:port' or 'host:port weight'.", nameof(text));
        }

        int weight = 1;
        if (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out weight) || weight is < 1 or > 1000))
        {
            throw new ArgumentException($"The weight of memcached server \"{text}\" must be a whole number from 1 to 1000; it is '{parts[1]}'.", nameof(text));
        }

        string address = parts[0];
        string host;
        string? port = null;
        if (address.StartsWith('['))
        {
            int close = address.IndexOf(']', StringComparison.Ordinal);
            if (close < 2 || (close < address.Length - 1 && address[close + 1] != ':'))
            {
                throw new ArgumentException($"The memcached server \"{text}\" has a malformed IPv6 address; write it as [address]:port.", nameof(text));
            }

            host = address[1..close];
            port = close < address.Length - 1 ? address[(close + 2)..] : null;
        }
        else
        {
            int colon = address.LastIndexOf(':');
            if (colon >= 0 && address.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                throw new ArgumentException($"The memcached server \"{text}\" looks like an IPv6 address; write it as [address]:port.", nameof(text));
            }

            host = colon >= 0 ? address[..colon] : address;
            port = colon >= 0 ? address[(colon + 1)..] : null;
        }

        if (host.Length == 0)
        {
            throw new ArgumentException($"The memcached server \"{text}\" has no host.", nameof(text));
        }

        int portNumber = DefaultPort;
        if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out portNumber) || portNumber is < 1 or > 65535))
        {
            throw new ArgumentException($"The port of memcached server \"{text}\" must be a number from 1 to 65535; it is '{port}'.", nameof(text));
        }

        return new MemcachedEndpoint(host, portNumber, weight);
    }

    /// <summary><c>host:port</c> (<c>[host]:port</c> for IPv6): the server's name on the hash ring and in messages.</summary>
    public string Address { get; }

    /// <inheritdoc/>
    public override string ToString() => Weight == 1 ? Address : $"{Address} {Weight}";
}
