using Broker.Frontend.Hosting;
using Microsoft.Extensions.Options;

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, BrokerHostingExtensions.Switches);
builder.AddBrokerFrontend();

try
{
    var app = builder.Build();
    app.MapBroker();
    app.Run();
    return 0;
}
catch (OptionsValidationException invalid)
{
    // A setting out of its range: each problem on a line of its own and exit code 2, like the
    // silo, instead of an unhandled exception's stack trace and an abort.
    Console.Error.WriteLine(string.Join(Environment.NewLine, invalid.Failures));
    return 2;
}

/// <summary>Entry point; public so that tests can reference the assembly.</summary>
public partial class Program;
