using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace SharedEntities.Memcached;

/// <summary>
/// Consistent hashing of keys onto servers, as libketama does it: each server gets
/// <c>floor(40 · servers · weight / total weight)</c> MD5 digests of <c>"host:port-i"</c>, each digest four points
/// on a 32-bit ring; a key belongs to the first point at or after the first four bytes of its own MD5. Adding or
/// removing a server moves only the keys between its points and their predecessors. Deterministic: every process
/// with the same server list places every key on the same server.
/// </summary>
[SuppressMessage("Security", "CA5351:Do Not Use Broken Cryptographic Algorithms", Justification = "MD5 is ketama's placement hash, shared with other memcached clients; nothing here is security.")]
internal sealed class KetamaRing
{
    private const int DigestsPerServerShare = 40;

    private readonly uint[] _points;
    private readonly int[] _owners;

    /// <summary>Builds the ring of <paramref name="servers"/> (indexes into the list are what lookups return).</summary>
    public KetamaRing(IReadOnlyList<MemcachedEndpoint> servers)
    {
        ArgumentNullException.ThrowIfNull(servers);
        if (servers.Count == 0)
        {
            throw new ArgumentException("A hash ring needs at least one server.", nameof(servers));
        }

        long totalWeight = servers.Sum(s => (long)s.Weight);
        var points = new List<(uint Point, int Owner)>();
        Span<byte> digest = stackalloc byte[MD5.HashSizeInBytes];
        for (int owner = 0; owner < servers.Count; owner++)
        {
            int digests = Math.Max(1, (int)Math.Floor((double)servers[owner].Weight / totalWeight * DigestsPerServerShare * servers.Count));
            for (int i = 0; i < digests; i++)
            {
                MD5.HashData(Encoding.ASCII.GetBytes($"{servers[owner].Address}-{i}"), digest);
                for (int h = 0; h < 4; h++)
                {
                    points.Add((ReadPoint(digest, h), owner));
                }
            }
        }

        // Ties (rare) go to the server listed first, so every process agrees.
        points.Sort((a, b) => a.Point != b.Point ? a.Point.CompareTo(b.Point) : a.Owner.CompareTo(b.Owner));
        _points = [.. points.Select(p => p.Point)];
        _owners = [.. points.Select(p => p.Owner)];
        ServerCount = servers.Count;
    }

    /// <summary>The number of servers.</summary>
    public int ServerCount { get; }

    /// <summary>The number of points on the ring.</summary>
    public int PointCount => _points.Length;

    /// <summary>The index of the server that owns <paramref name="key"/> (printable ASCII, at most 250 characters).</summary>
    public int GetServer(string key)
    {
        if (ServerCount == 1)
        {
            return 0;
        }

        Span<byte> bytes = stackalloc byte[key.Length];
        for (int i = 0; i < key.Length; i++)
        {
            bytes[i] = (byte)key[i];
        }

        Span<byte> digest = stackalloc byte[MD5.HashSizeInBytes];
        MD5.HashData(bytes, digest);
        uint hash = ReadPoint(digest, 0);
        int index = Array.BinarySearch(_points, hash);
        if (index < 0)
        {
            index = ~index;
        }
        else
        {
            while (index > 0 && _points[index - 1] == hash)
            {
                index--;
            }
        }

        return _owners[index == _points.Length ? 0 : index];
    }

    private static uint ReadPoint(ReadOnlySpan<byte> digest, int h) =>
        ((uint)digest[3 + (h * 4)] << 24) | ((uint)digest[2 + (h * 4)] << 16) | ((uint)digest[1 + (h * 4)] << 8) | digest[h * 4];
}
