using SharedSheets;

// dotnet run --project samples/SharedSheets [-- --help]: both seed stories across worker processes of this program.
// The coordinator starts the workers as `SharedSheets --worker <name>` (where the data and the tokens live comes in the
// SHAREDSHEETS_DEPLOYMENT environment variable) and drives them over standard input.
try
{
    if (args.Length > 0 && args[0] == "--worker")
    {
        Deployment deployment = Deployment.FromEnvironment();
        return await new Worker(deployment, Console.In, Console.Out, args.Contains("--break-guarantee")).RunAsync();
    }

    SampleOptions options = SampleOptions.Parse(args);
    if (options.Help)
    {
        Console.WriteLine(SampleOptions.Usage);
        return 0;
    }

    return await new Coordinator(options, Console.Out).RunAsync();
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"SharedSheets: {ex.Message}");
    Console.Error.WriteLine("Run with --help for the options.");
    return 2;
}
catch (WorkerFailedException ex)
{
    Console.Error.WriteLine($"SharedSheets: {ex.Message}");
    return 3;
}
