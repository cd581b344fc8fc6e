namespace SharedEntities.Memcached;

/// <summary>
/// What one connection last saw of each key: the token and the item's CAS, from a <c>mg</c> reply or a loud <c>ms</c>
/// (which returns the new CAS). A raise or publish whose condition the hint already meets skips its <c>mg</c> and sends
/// <c>ms … C&lt;cas&gt;</c> at once: memcached stores it only if the item is still the one seen, and a changed item
/// (<c>EX</c>/<c>NF</c>) costs one extra round trip back to the read-then-CAS path, never a wrong write.
/// </summary>
/// <remarks>
/// The hints belong to one connection, hence to one run of one server: CAS values restart when memcached does, so a
/// CAS seen before a restart could match an unrelated item after it. A connection does not outlive its server, and
/// its hints go with it. Only the exchange holding the connection touches them: no locking. Bounded: when full, the
/// hints are forgotten (they only save round trips).
/// </remarks>
internal sealed class CasHints
{
    /// <summary>The number of keys remembered before the hints are forgotten.</summary>
    public const int Capacity = 16_384;

    private readonly Dictionary<string, (long Token, ulong Cas)> _byKey = new(StringComparer.Ordinal);

    public int Count => _byKey.Count;

    public bool TryGet(string key, out long token, out ulong cas)
    {
        bool found = _byKey.TryGetValue(key, out (long Token, ulong Cas) hint);
        (token, cas) = hint;
        return found;
    }

    /// <summary>The item under <paramref name="key"/> holds <paramref name="token"/> at <paramref name="cas"/>.</summary>
    public void Saw(string key, long token, ulong cas)
    {
        if (cas == 0)
        {
            _byKey.Remove(key); // no CAS known (a reply without one): nothing to skip a read with
            return;
        }

        if (_byKey.Count >= Capacity && !_byKey.ContainsKey(key))
        {
            _byKey.Clear();
        }

        _byKey[key] = (token, cas);
    }

    /// <summary>The item under <paramref name="key"/> is unknown: missing, not a token, or changed since.</summary>
    public void Forget(string key) => _byKey.Remove(key);
}
