using System.Globalization;

namespace SharedSheets;

/// <summary>The command line. Bad input is a <see cref="UsageException"/>: a message, exit code 2, nothing created.</summary>
internal sealed record SampleOptions
{
    public const string Usage = """
        Usage: dotnet run --project samples/SharedSheets [-- options]

        Plays both seed stories across worker processes of this program: a rename seen by the others, a delete
        noticed, a long recalculation aborted because another process changed the sheet, a contended counter with
        no lost update. Ends with a summary line; exits 1 if a guarantee was violated.

        Options:
          --memcached host:port[,host:port]  keep the tokens in memcached (default: the embedded store, a table of
                                             the SQLite file; with --postgres, a SQLite file of its own)
          --memcached-tls                    connect to memcached over TLS (memcached -Z), trusting the system's roots
          --memcached-ca FILE                trust this CA or server certificate (PEM) for memcached's TLS; implies
                                             --memcached-tls
          --memcached-user NAME              authenticate to memcached (memcached -Y) as NAME, with the password in
                                             the environment variable SHAREDSHEETS_MEMCACHED_PASSWORD
          --postgres "<connection string>"   keep the sheets in PostgreSQL (default: a SQLite file in a temp folder);
                                             the sample creates and drops a schema of its own there
          --processes N                      worker processes, 2 to 16 (default 4)
          --loops N                          counter increments per process, 1 to 100000 (default 100)
          -h, --help                         this text
        """;

    /// <summary>The environment variable that holds the password of <c>--memcached-user</c> (never on the command line).</summary>
    public const string MemcachedPasswordVariable = "SHAREDSHEETS_MEMCACHED_PASSWORD";

    public string? Memcached { get; init; }

    public bool MemcachedTls { get; init; }

    public string? MemcachedCa { get; init; }

    public string? MemcachedUser { get; init; }

    public string? Postgres { get; init; }

    public int Processes { get; init; } = 4;

    public int Loops { get; init; } = 100;

    public bool Help { get; init; }

    /// <summary>Test aid, not in the usage text: the counter loop writes back without the version guard (the seed's protocol).</summary>
    public bool BreakGuarantee { get; init; }

    public static SampleOptions Parse(IReadOnlyList<string> args)
    {
        var options = new SampleOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            options = arg switch
            {
                "-h" or "--help" => options with { Help = true },
                "--memcached" => options with { Memcached = Value(args, ref i) },
                "--memcached-tls" => options with { MemcachedTls = true },
                "--memcached-ca" => options with { MemcachedCa = Value(args, ref i), MemcachedTls = true },
                "--memcached-user" => options with { MemcachedUser = Value(args, ref i) },
                "--postgres" => options with { Postgres = Value(args, ref i) },
                "--processes" => options with { Processes = Number(args, ref i, 2, 16) },
                "--loops" => options with { Loops = Number(args, ref i, 1, 100_000) },
                "--break-guarantee" => options with { BreakGuarantee = true },
                _ => throw new UsageException($"Unknown argument '{arg}'."),
            };
        }

        if (options.Memcached is null && (options.MemcachedTls || options.MemcachedUser is not null))
        {
            throw new UsageException("--memcached-tls, --memcached-ca and --memcached-user need --memcached.");
        }

        if (options.MemcachedCa is { } ca && !File.Exists(ca))
        {
            throw new UsageException($"--memcached-ca: no file '{ca}'.");
        }

        if (options.MemcachedUser is not null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(MemcachedPasswordVariable)))
        {
            throw new UsageException($"--memcached-user needs the password in the environment variable {MemcachedPasswordVariable}.");
        }

        if (options.Memcached is { } servers)
        {
            try
            {
                _ = SharedEntities.Memcached.MemcachedEndpoint.ParseList(servers);
            }
            catch (ArgumentException ex)
            {
                throw new UsageException($"--memcached: {ex.Message}");
            }

            try
            {
                Deployment.MemcachedOptions(servers, options.MemcachedTls, options.MemcachedCa, options.MemcachedUser).Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException($"--memcached-user or its password: {ex.Message}"); // never the password itself
            }
        }

        return options;
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        string name = args[i];
        if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal) || string.IsNullOrWhiteSpace(args[i + 1]))
        {
            throw new UsageException($"{name} needs a value.");
        }

        return args[++i];
    }

    private static int Number(IReadOnlyList<string> args, ref int i, int min, int max)
    {
        string name = args[i];
        string text = Value(args, ref i);
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw new UsageException($"{name} must be a whole number from {min} to {max}; it is '{text}'.");
        }

        return value;
    }
}

/// <summary>A command line the sample cannot run.</summary>
internal sealed class UsageException(string message) : Exception(message);
