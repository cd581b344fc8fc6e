using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/SharedEntities.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
