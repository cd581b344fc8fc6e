namespace SharedEntities.Memcached;

/// <summary>The return code of a meta reply.</summary>
internal enum MetaStatus : byte
{
    /// <summary>No reply yet.</summary>
    None,

    /// <summary><c>VA</c>: a value follows (<see cref="MetaReply.Value"/>).</summary>
    Value,

    /// <summary><c>HD</c>: success without a value, or the silence of a quiet <c>ms</c>/<c>md</c>.</summary>
    Done,

    /// <summary><c>EN</c>: miss, or the silence of a quiet <c>mg</c>.</summary>
    Miss,

    /// <summary><c>NS</c>: not stored (an add found an item).</summary>
    NotStored,

    /// <summary><c>EX</c>: the CAS did not match.</summary>
    Exists,

    /// <summary><c>NF</c>: no item (a CAS store or an increment).</summary>
    NotFound,

    /// <summary>An increment found a value that is not a number (memcached answers <c>CLIENT_ERROR</c>).</summary>
    NonNumeric,
}

/// <summary>What the value block of a <c>VA</c> reply holds, as far as tokens go.</summary>
internal enum MetaValueKind : byte
{
    /// <summary>No value block.</summary>
    None,

    /// <summary>Zero bytes: a lease placeholder.</summary>
    Empty,

    /// <summary>A decimal number (<see cref="MetaReply.Number"/>).</summary>
    Number,

    /// <summary>The tombstone, <c>DEL</c>.</summary>
    Tombstone,

    /// <summary>Anything else: not a token.</summary>
    Other,
}

/// <summary>A parsed meta reply. Values are decoded in place; nothing here allocates.</summary>
internal record struct MetaReply(
    MetaStatus Status,
    ulong Cas = 0,
    MetaValueKind ValueKind = MetaValueKind.None,
    long Number = 0,
    int ValueLength = 0,
    bool Won = false,
    bool AlreadyWon = false,
    bool Stale = false)
{
    /// <summary>The token the value block carries (<see cref="long.MaxValue"/> for a tombstone).</summary>
    public readonly long Value => ValueKind == MetaValueKind.Tombstone ? long.MaxValue : Number;

    /// <summary>The value block holds a token (a number or the tombstone).</summary>
    public readonly bool HasToken => ValueKind is MetaValueKind.Number or MetaValueKind.Tombstone;
}
