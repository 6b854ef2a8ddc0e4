using Broker.Frontend.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, BrokerHostingExtensions.Switches);
builder.AddBrokerFrontend();

var app = builder.Build();
app.MapBroker();
app.Run();

/// <summary>Entry point; public so that tests can reference the assembly.</summary>
public partial class Program;
