using System.Text.Json;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;
using Broker.Grains.Models;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// Publishes straight to a room grain, as the server's HTTP API does: no socket, so no
/// publisher whose own outbox (it would receive its copies) could be what a test trips over.
/// </summary>
internal static class ServerPublisher
{
    public static async Task<PublishResult> PublishAsync(this BrokerServer server, string room, object data, string ns = "chat")
    {
        var policy = new NamespaceOptions().ToRoomPolicy();
        var grain = server.Services.GetRequiredService<IGrainFactory>().GetGrain<IRoomGrain>(GrainKeys.Of(ns, room));
        return await grain.Publish(new PublishRequest("server", JsonSerializer.SerializeToUtf8Bytes(data), null, policy)).WaitAsync(TestClient.DefaultTimeout);
    }
}
