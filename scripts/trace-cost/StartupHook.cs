using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using OpenTelemetry;
using OpenTelemetry.Trace;

/// <summary>
/// Loaded by the runtime before Main when named in DOTNET_STARTUP_HOOKS. The sampler comes from
/// the standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG variables (the SDK reads them);
/// the exporter counts the spans it is handed and says how many when the process exits.
/// </summary>
internal static class StartupHook
{
    public static void Initialize()
    {
        // The SDK's assemblies sit beside this one, not in the application's directory.
        var directory = Path.GetDirectoryName(typeof(StartupHook).Assembly.Location)!;
        AssemblyLoadContext.Default.Resolving += (context, name) =>
        {
            var path = Path.Combine(directory, name.Name + ".dll");
            return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
        };
        Start();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Start() => TraceCost.Start();
}

internal static class TraceCost
{
    private static TracerProvider? s_provider;

    public static void Start()
    {
        var exporter = new CountingExporter();
        s_provider = Sdk.CreateTracerProviderBuilder()
            .AddSource("Broker", "Microsoft.Orleans.Application")
            .AddProcessor(new BatchActivityExportProcessor(exporter))
            .Build();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            s_provider?.ForceFlush(2000);
            Console.Error.WriteLine($"trace-cost: {exporter.Spans} spans exported ({string.Join(", ", exporter.ByName.Select(p => $"{p.Key} {p.Value}"))})");
        };
    }

    private sealed class CountingExporter : BaseExporter<Activity>
    {
        public long Spans;
        public readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> ByName = new();

        public override ExportResult Export(in Batch<Activity> batch)
        {
            foreach (var activity in batch)
            {
                Spans++;
                ByName.AddOrUpdate(activity.OperationName, 1, (_, n) => n + 1);
            }

            return ExportResult.Success;
        }
    }
}
