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

    public static readonly string[] Formatters = [ConsoleFormatterNames.Simple, ConsoleFormatterNames.Json, ConsoleFormatterNames.Systemd];

    public static IServiceCollection AddConsoleLogFormat(this IServiceCollection services)
    {
        // After the configuration's own values, so that a configured name or timestamp format
        // (even "") wins. The name is set because, left unset, the console provider copies the
        // obsolete ConsoleLoggerOptions.TimestampFormat (null) over the simple formatter's own.
        services.PostConfigure<ConsoleLoggerOptions>(o => o.FormatterName ??= ConsoleFormatterNames.Simple);
        services.PostConfigure<SimpleConsoleFormatterOptions>(o => o.TimestampFormat ??= DefaultTimestampFormat);
        services.AddOptions<ConsoleLoggerOptions>()
            .Validate(
                o => o.FormatterName is null || Formatters.Contains(o.FormatterName, StringComparer.OrdinalIgnoreCase),
                $"Logging:Console:FormatterName must be one of {string.Join(", ", Formatters)} (unset: {ConsoleFormatterNames.Simple}).")
            .ValidateOnStart();
        return services;
    }
}
