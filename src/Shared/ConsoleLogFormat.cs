using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>
/// The console log format of the front-end and the silo (this file is compiled into both):
/// Logging:Console:FormatterName picks it, "simple" (the default), "json" or "systemd", and
/// Logging:Console:FormatterOptions:* tune it. The console provider itself is the one
/// WebApplication.CreateBuilder adds, which reads both settings; pinning a formatter in code
/// (AddSimpleConsole) would make the setting a no-op.
/// </summary>
internal static class ConsoleLogFormat
{
    /// <summary>The simple format's timestamp when none is configured.</summary>
    public const string DefaultTimestampFormat = "HH:mm:ss.fff ";

    /// <summary>The JSON format's timestamp when none is configured (ISO 8601, UTC).</summary>
    public const string JsonTimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public static readonly string[] Formatters = [ConsoleFormatterNames.Simple, ConsoleFormatterNames.Json, ConsoleFormatterNames.Systemd];

    public static IServiceCollection AddConsoleLogFormat(this IServiceCollection services)
    {
        // After the configuration's own values, so that a configured name or timestamp format
        // (even "") wins. The name is set because, left unset, the console provider copies the
        // obsolete ConsoleLoggerOptions.TimestampFormat (null) over the simple formatter's own.
        services.PostConfigure<ConsoleLoggerOptions>(o => o.FormatterName ??= ConsoleFormatterNames.Simple);
        services.PostConfigure<SimpleConsoleFormatterOptions>(o => o.TimestampFormat ??= DefaultTimestampFormat);

        // JSON lines carry a "Timestamp" only when a format is set: ISO 8601 in UTC unless configured.
        services.PostConfigure<JsonConsoleFormatterOptions>(o =>
        {
            if (o.TimestampFormat is null)
            {
                o.TimestampFormat = JsonTimestampFormat;
                o.UseUtcTimestamp = true;
            }
        });
        services.AddOptions<ConsoleLoggerOptions>()
            .Validate(
                o => o.FormatterName is null || Formatters.Contains(o.FormatterName, StringComparer.OrdinalIgnoreCase),
                FormatterProblem)
            .ValidateOnStart();
        return services;
    }

    /// <summary>The problem with Logging:Console:FormatterName, if any, for a host that checks its settings before it starts.</summary>
    public static IEnumerable<string> Validate(Microsoft.Extensions.Configuration.IConfiguration configuration)
    {
        var name = configuration["Logging:Console:FormatterName"];
        if (!string.IsNullOrEmpty(name) && !Formatters.Contains(name, StringComparer.OrdinalIgnoreCase))
        {
            yield return FormatterProblem;
        }
    }

    private static readonly string FormatterProblem =
        $"Logging:Console:FormatterName must be one of {string.Join(", ", Formatters)} (unset: {ConsoleFormatterNames.Simple}).";
}
