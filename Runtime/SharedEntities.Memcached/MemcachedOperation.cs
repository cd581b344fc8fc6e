using SharedEntities.Stores;

namespace SharedEntities.Memcached;

/// <summary>The meta command a <see cref="MemcachedOperation"/> sends next.</summary>
internal enum OperationStep : byte
{
    /// <summary><c>mg k v c [N&lt;ttl&gt;]</c>: read the value and its CAS.</summary>
    Get,

    /// <summary><c>ms k … C&lt;cas&gt; T&lt;ttl&gt;</c>: replace the item read (or the lease placeholder) by CAS.</summary>
    CasSet,

    /// <summary><c>ms k … T&lt;ttl&gt; ME</c>: add if absent.</summary>
    Add,

    /// <summary><c>ma k v c</c>: increment.</summary>
    Increment,

    /// <summary><c>mg k v c</c> after a refused write, to report the current value (or decide the retry).</summary>
    Peek,

    /// <summary>The result is known.</summary>
    Done,
}

/// <summary>
/// One <see cref="StoreOperation"/> as a small state machine of meta commands, with the semantics of
/// <see cref="InMemorySharedStore"/>. Each round of a <see cref="NodeBatch"/> sends <see cref="NextRequest"/> of every
/// unfinished operation in one pipeline and hands each its reply; most operations finish in one round, a raise or
/// publish in two (read, then CAS) — in one when the connection's <see cref="CasHints"/> already show the item meets
/// its condition — more only when other clients change the item meanwhile.
/// </summary>
/// <remarks>
/// Raise: <c>mg</c>; a miss → add (lost to another adder → again); a token ≥ the value → NotStored(current); below it,
/// or a placeholder → <c>ms C&lt;cas&gt;</c> (changed meanwhile → again). Publish: <c>mg</c>; exactly the expected
/// token → <c>ms C&lt;cas&gt;</c> (changed meanwhile → again), anything else → NotStored, never an add. Fill:
/// <c>ms C&lt;cas&gt;</c> of the placeholder or damaged value. A value that is not a token (not a number, or too large
/// to read) is <see cref="StoreStatus.Damaged"/> to a read and below everything to a raise, as in the in-memory store. Increment: <c>ma</c>; on the tombstone memcached refuses (not a number) →
/// NotStored(tombstone). AddIfAbsent: <c>ms ME</c>. Refused fills, increments and adds peek at the item to report
/// what is there, as the in-memory store does. Retries are bounded by <see cref="MemcachedClientOptions.MaxCasAttempts"/>.
/// </remarks>
internal struct MemcachedOperation
{
    private int _attempts;
    private ulong _cas;
    private bool _hintUsed;
    private bool _onHint;

    public MemcachedOperation(int index, in StoreOperation operation, uint ttlSeconds)
    {
        Index = index;
        Operation = operation;
        TtlSeconds = ttlSeconds;
        _attempts = 1;
        (Step, _cas) = operation.Kind switch
        {
            StoreOperationKind.Read or StoreOperationKind.Raise or StoreOperationKind.Publish => (OperationStep.Get, 0UL),
            StoreOperationKind.Fill when operation.Cas == 0 => (OperationStep.Peek, 0UL), // No placeholder has CAS 0; and C0 would mean "no check".
            StoreOperationKind.Fill => (OperationStep.CasSet, operation.Cas),
            StoreOperationKind.Increment => (OperationStep.Increment, 0UL),
            StoreOperationKind.AddIfAbsent => (OperationStep.Add, 0UL),
            _ => throw new ArgumentOutOfRangeException(nameof(operation), operation.Kind, "Unknown store operation."),
        };
    }

    /// <summary>The operation's index in its <see cref="StoreBatch"/>.</summary>
    public int Index { get; }

    public StoreOperation Operation { get; }

    public uint TtlSeconds { get; }

    public OperationStep Step { get; private set; }

    public StoreResult Result { get; private set; }

    public readonly bool IsDone => Step == OperationStep.Done;

    public readonly MetaRequest NextRequest()
    {
        string key = Operation.Key;
        return Step switch
        {
            OperationStep.Get => MetaRequest.Get(key, leaseTtlSeconds: Operation is { Kind: StoreOperationKind.Read, Lease: true } ? TtlSeconds : null),
            OperationStep.Peek => MetaRequest.Get(key),
            OperationStep.CasSet => MetaRequest.Set(key, Operation.Value, TtlSeconds, _cas, quiet: false),
            OperationStep.Add => MetaRequest.Add(key, Operation.Value, TtlSeconds, quiet: false),
            OperationStep.Increment => MetaRequest.Increment(key),
            _ => throw new InvalidOperationException("The operation is finished."),
        };
    }

    /// <summary>
    /// Before the first read of a raise or publish: if <paramref name="hints"/> show the item meets the condition (a
    /// token below the raise, exactly the publish's expected token), goes straight to the CAS store. Returns whether
    /// the next request changed.
    /// </summary>
    public bool TryUseHint(CasHints hints)
    {
        // Only a raise or publish can skip its read; a read must not even look (one dictionary lookup per key).
        if (Operation.Kind is not (StoreOperationKind.Raise or StoreOperationKind.Publish)
            || Step != OperationStep.Get || _hintUsed || !hints.TryGet(Operation.Key, out long token, out ulong cas))
        {
            return false;
        }

        bool meets = Operation.Kind == StoreOperationKind.Raise ? token < Operation.Value : token == Operation.Expected;
        if (!meets)
        {
            return false;
        }

        _hintUsed = _onHint = true;
        _cas = cas;
        Step = OperationStep.CasSet;
        return true;
    }

    /// <summary>Notes in <paramref name="hints"/> what <paramref name="reply"/> (to <see cref="NextRequest"/>) shows of the item.</summary>
    public readonly void Note(in MetaReply reply, CasHints hints)
    {
        string key = Operation.Key;
        switch (Step)
        {
            case OperationStep.Get or OperationStep.Peek when reply.HasToken:
                hints.Saw(key, reply.Value, reply.Cas);
                break;
            case OperationStep.CasSet or OperationStep.Add when reply.Status == MetaStatus.Done:
                hints.Saw(key, Operation.Value, reply.Cas);
                break;
            case OperationStep.Increment when reply is { Status: MetaStatus.Value, ValueKind: MetaValueKind.Number }:
                hints.Saw(key, reply.Number, reply.Cas);
                break;
            default:
                hints.Forget(key);
                break;
        }
    }

    /// <summary>Ends the operation with <paramref name="status"/> because its exchange failed.</summary>
    public void Fail(StoreStatus status, Exception error) => Finish(new StoreResult(status, Error: error));

    /// <summary>Advances the operation with the reply to <see cref="NextRequest"/>.</summary>
    public void OnReply(in MetaReply reply, int maxAttempts, MemcachedEndpoint server)
    {
        if (reply.Status == MetaStatus.Value && reply.ValueKind != MetaValueKind.None && reply.Cas == 0 && Step != OperationStep.Increment)
        {
            Finish(Failed(server, $"memcached at {server.Address} returned an item without the CAS value it was asked for."));
            return;
        }

        switch (Step)
        {
            case OperationStep.Get:
                OnGet(reply);
                break;
            case OperationStep.CasSet:
                OnStore(reply, maxAttempts, server);
                break;
            case OperationStep.Add:
                OnStore(reply, maxAttempts, server);
                break;
            case OperationStep.Increment:
                OnIncrement(reply, server);
                break;
            case OperationStep.Peek:
                OnPeek(reply, maxAttempts, server);
                break;
            default:
                throw new InvalidOperationException("The operation is finished.");
        }
    }

    private void OnGet(in MetaReply reply)
    {
        bool miss = reply.Status == MetaStatus.Miss;
        bool placeholder = reply.ValueKind == MetaValueKind.Empty;
        switch (Operation.Kind)
        {
            case StoreOperationKind.Read:
                Finish(
                    reply.HasToken ? new StoreResult(StoreStatus.Hit, reply.Value, reply.Cas)

                    // Not a number, or an empty value that no lease created (memcached flags those W, then Z).
                    : reply.ValueKind == MetaValueKind.Other || (placeholder && !reply.Won && !reply.AlreadyWon) ? new StoreResult(StoreStatus.Damaged, Cas: reply.Cas)
                    : placeholder && Operation.Lease ? new StoreResult(reply.Won ? StoreStatus.LeaseWon : StoreStatus.LeaseLost, Cas: reply.Cas)
                    : new StoreResult(StoreStatus.Miss));
                break;

            case StoreOperationKind.Raise:
                if (miss)
                {
                    Step = OperationStep.Add;
                }
                else if (reply.HasToken && reply.Value >= Operation.Value)
                {
                    Finish(new StoreResult(StoreStatus.NotStored, reply.Value, reply.Cas));
                }
                else
                {
                    _cas = reply.Cas; // Below the value, a lease placeholder or a damaged value: replace exactly what we saw.
                    Step = OperationStep.CasSet;
                }

                break;

            case StoreOperationKind.Publish:
                if (reply.HasToken && reply.Value == Operation.Expected)
                {
                    _cas = reply.Cas;
                    Step = OperationStep.CasSet;
                }
                else
                {
                    Finish(reply.HasToken ? new StoreResult(StoreStatus.NotStored, reply.Value, reply.Cas) : new StoreResult(StoreStatus.NotStored));
                }

                break;

            default:
                throw new InvalidOperationException($"{Operation.Kind} does not read first.");
        }
    }

    // The reply to ms (CAS set or add): HD on success (with the new CAS, which Note keeps in the connection's hints).
    private void OnStore(in MetaReply reply, int maxAttempts, MemcachedEndpoint server)
    {
        if (reply.Status == MetaStatus.Done)
        {
            Finish(new StoreResult(StoreStatus.Stored, Operation.Value));
            return;
        }

        // NS (an add found an item), EX (the CAS changed), NF (the item vanished).
        switch (Operation.Kind)
        {
            case StoreOperationKind.Raise or StoreOperationKind.Publish when _onHint:
                _onHint = false;
                Step = OperationStep.Get; // the hint was out of date: read, as without one (not an attempt of the CAS loop)
                break;
            case StoreOperationKind.Raise or StoreOperationKind.Publish:
                Retry(OperationStep.Get, maxAttempts, server);
                break;
            case StoreOperationKind.Fill or StoreOperationKind.AddIfAbsent:
                Step = OperationStep.Peek;
                break;
            default:
                throw new InvalidOperationException($"{Operation.Kind} does not store.");
        }
    }

    private void OnIncrement(in MetaReply reply, MemcachedEndpoint server)
    {
        switch (reply.Status)
        {
            case MetaStatus.Value when reply.ValueKind == MetaValueKind.Number:
                Finish(new StoreResult(StoreStatus.Stored, reply.Number, reply.Cas));
                break;
            case MetaStatus.NotFound:
                Finish(new StoreResult(StoreStatus.Miss));
                break;
            case MetaStatus.NonNumeric:
                Step = OperationStep.Peek; // The tombstone, or a lease placeholder (empty): look which.
                break;
            default:
                Finish(Failed(server, $"memcached at {server.Address} answered {reply.Status} to an increment."));
                break;
        }
    }

    private void OnPeek(in MetaReply reply, int maxAttempts, MemcachedEndpoint server)
    {
        switch (Operation.Kind)
        {
            case StoreOperationKind.Fill:
                Finish(new StoreResult(StoreStatus.NotStored, reply.HasToken ? reply.Value : 0));
                break;

            case StoreOperationKind.AddIfAbsent:
                Finish(reply.Status == MetaStatus.Miss ? new StoreResult(StoreStatus.NotStored) : new StoreResult(StoreStatus.NotStored, reply.HasToken ? reply.Value : 0, reply.Cas));
                break;

            case StoreOperationKind.Increment:
                if (reply.ValueKind == MetaValueKind.Tombstone)
                {
                    Finish(new StoreResult(StoreStatus.NotStored, long.MaxValue, reply.Cas));
                }
                else if (reply.ValueKind == MetaValueKind.Number)
                {
                    Retry(OperationStep.Increment, maxAttempts, server); // Replaced by a number meanwhile.
                }
                else
                {
                    Finish(new StoreResult(StoreStatus.Miss)); // Gone, a lease placeholder or a damaged value: nothing to increment.
                }

                break;

            default:
                throw new InvalidOperationException($"{Operation.Kind} does not peek.");
        }
    }

    private void Retry(OperationStep step, int maxAttempts, MemcachedEndpoint server)
    {
        if (_attempts >= maxAttempts)
        {
            Finish(Failed(
                server,
                $"Gave up on {Operation.Kind} at memcached {server.Address} after {_attempts} attempts: other clients kept changing the item."));
            return;
        }

        _attempts++;
        Step = step;
    }

    private void Finish(StoreResult result)
    {
        Result = result;
        Step = OperationStep.Done;
    }

    private static StoreResult Failed(MemcachedEndpoint server, string message) =>
        new(StoreStatus.Failed, Error: new MemcachedException(server, message));
}
