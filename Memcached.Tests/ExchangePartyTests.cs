namespace SharedEntities.Memcached.Tests;

/// <summary>
/// What the caller of an exchange sees of it (<see cref="IExchangeParty"/>): the connection's hints before the
/// requests go out, then every reply as soon as it is read — while the server still holds back later ones — and each
/// exactly once, in order, quiet misses included.
/// </summary>
public sealed class ExchangePartyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static TheoryData<bool> Modes => new() { false, true };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Each_reply_reaches_the_party_while_the_server_still_holds_back_the_next(bool async)
    {
        var party = new RecordingParty();
        MetaRequest[] requests = [MetaRequest.Get("a", quiet: false), MetaRequest.Get("b", quiet: false), MetaRequest.Get("c", quiet: false)];
        await ExchangeAsync(requests, party, async, async (client, sent) =>
        {
            await client.WriteAsync($"VA 1 c11 {sent[0].Opaque}\r\n1\r\n");

            // The rest only once the party has acted on the first reply: a party called at the end would time out.
            if (await Task.WhenAny(party.FirstReply.Task, Task.Delay(Timeout)) == party.FirstReply.Task)
            {
                await client.WriteAsync($"VA 1 c12 {sent[1].Opaque}\r\n2\r\nVA 1 c13 {sent[2].Opaque}\r\n3\r\nMN\r\n");
            }
        });

        Assert.Equal(["before send", "0..1: 1", "1..2: 2", "2..3: 3"], party.Events);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Quiet_misses_reach_the_party_with_the_reply_that_shows_them(bool async)
    {
        var party = new RecordingParty();
        MetaRequest[] requests = [MetaRequest.Get("a"), MetaRequest.Get("b"), MetaRequest.Get("c")];
        MetaReply[] replies = await ExchangeAsync(requests, party, async,
            (client, sent) => client.WriteAsync($"VA 1 c12 {sent[1].Opaque}\r\n2\r\nMN\r\n")); // a and c missed, quietly

        Assert.Equal(["before send", "0..2: miss 2", "2..3: miss"], party.Events);
        Assert.Equal([MetaStatus.Miss, MetaStatus.Value, MetaStatus.Miss], replies.Select(r => r.Status));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task A_failure_after_some_replies_fails_the_exchange_and_hands_over_nothing_more(bool async)
    {
        var party = new RecordingParty();
        MetaRequest[] requests = [MetaRequest.Get("a", quiet: false), MetaRequest.Get("b", quiet: false)];
        var error = await Assert.ThrowsAsync<MemcachedProtocolException>(() => ExchangeAsync(requests, party, async,
            (client, sent) => client.WriteAsync($"VA 1 c11 {sent[0].Opaque}\r\n1\r\nSERVER_ERROR out of memory\r\n")));

        Assert.Contains("SERVER_ERROR out of memory", error.Message, StringComparison.Ordinal);
        Assert.Equal(["before send", "0..1: 1"], party.Events);
    }

    // One exchange of the requests with a fake server that answers the pipeline with answer(client, what it read).
    private static async Task<MetaReply[]> ExchangeAsync(
        MetaRequest[] requests, RecordingParty party, bool async, Func<FakeClient, List<FakeRequest>, Task> answer)
    {
        using var server = new ScriptedServer(async (client, number) =>
        {
            await client.HandshakeAsync();
            await answer(client, (await client.ReadPipelineAsync())!);
        });
        using MetaConnection connection = await MetaConnection.OpenAsync(new MemcachedEndpoint("127.0.0.1", server.Port), Timeout, async, CancellationToken.None);
        var replies = new MetaReply[requests.Length];
        party.Watch(replies);
        await connection.ExchangeAsync(requests, requests.Length, replies, party, Timeout, async, CancellationToken.None);
        return replies;
    }

    private sealed class RecordingParty : IExchangeParty
    {
        private MetaReply[]? _replies;

        public List<string> Events { get; } = [];

        public TaskCompletionSource FirstReply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void BeforeSend(CasHints hints) => Events.Add("before send");

        public void OnReplies(int from, int to, CasHints hints)
        {
            Events.Add($"{from}..{to}: " + string.Join(' ', Enumerable.Range(from, to - from).Select(Describe)));
            FirstReply.TrySetResult();
        }

        /// <summary>The array the exchange fills: each event shows the replies it hands over.</summary>
        public void Watch(MetaReply[] replies) => _replies = replies;

        private string Describe(int index) => _replies is null ? "?"
            : _replies[index].Status == MetaStatus.Miss ? "miss" : _replies[index].Number.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
