using System.Globalization;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// A front-end whose connection count moved by Broker:IdleTrimConnections and that then goes
/// quiet gives the burst's memory back with one full collection (IdleMemoryTrim, logged at Debug,
/// event 1040): a real process, real connections.
/// </summary>
public sealed class IdleMemoryTrimTests(ITestOutputHelper output)
{
    private const string Trimmed = "a full collection took the working set";

    [Fact]
    public async Task ConnectionsOpened_ThenQuiet_MemoryIsTrimmedOnce()
    {
        var logs = Path.Combine(Path.GetTempPath(), "broker-cluster-tests", "trim-" + DateTime.UtcNow.ToString("HHmmss-fff", CultureInfo.InvariantCulture));
        await using var frontend = await FrontendProcess.StartAsync(
            "fe-trim",
            logs,
            redis: null,
            settings: ["--Broker:IdleTrimInterval=00:00:01", "--Broker:IdleTrimConnections=50", "--Logging:LogLevel:Broker.Frontend.Hosting.IdleMemoryTrim=Debug"]);
        var clients = new List<WsClient>();
        try
        {
            for (var i = 0; i < 60; i++)
            {
                clients.Add(await WsClient.ConnectAsync(frontend.WsBase, Names.Unique("idle")));
            }

            await frontend.WaitForOutputAsync(Trimmed, TimeSpan.FromSeconds(30));
            var line = frontend.ReadLog().Split('\n').First(l => l.Contains(Trimmed, StringComparison.Ordinal));
            output.WriteLine(line);
            var change = int.Parse(System.Text.RegularExpressions.Regex.Match(line, @"moved by (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.InRange(change, 50, 60);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }
}
