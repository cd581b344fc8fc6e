using BenchmarkDotNet.Running;
using SharedEntities.Benchmarks;

// dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*'     BenchmarkDotNet
// dotnet run -c Release --project bench/SharedEntities.Benchmarks -- driver           the whole-process driver
if (args.Length > 0 && args[0] == "driver")
{
    return await Driver.RunAsync(args);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
