using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// The server API across real processes: info from one front-end sees every front-end and
/// silo; a disconnect asked of one front-end closes the user's sockets on the other too; and
/// nginx never forwards /api.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class ServerApiClusterTests(SharedClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };

    [Fact]
    public Task Info_AskedOfOneFrontend_ListsBothFrontendsWithTheirConnectionsAndBothSilos() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var (fe1, fe2) = (fixture.Cluster.Frontends[0], fixture.Cluster.Frontends[1]);
        await using var onSecond = await WsClient.ConnectAsync(fe2.WsBase, Names.Unique("info"));

        // fe-2's count reaches the registry with its next lease renewal (every LeaseInterval).
        var clock = Stopwatch.StartNew();
        JsonElement info;
        while (true)
        {
            info = await GetJsonAsync(Api(fe1, "/api/info"));
            var second = info.GetProperty("frontends").EnumerateArray().FirstOrDefault(f => f.GetProperty("id").GetString() == "fe-2");
            if (second.ValueKind == JsonValueKind.Object && second.GetProperty("connections").ValueKind == JsonValueKind.Number && second.GetProperty("connections").GetInt32() >= 1)
            {
                break;
            }

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"fe-2's connection never showed in fe-1's info: {info}");
            await Task.Delay(200);
        }

        output.WriteLine(info.ToString());
        Assert.Equal("fe-1", info.GetProperty("node").GetString());
        Assert.Equal("cluster", info.GetProperty("mode").GetString());
        Assert.Equal(["fe-1", "fe-2"], info.GetProperty("frontends").EnumerateArray().Select(f => f.GetProperty("id").GetString()!));
        var silos = info.GetProperty("silos").EnumerateArray().ToList();
        Assert.Equal(2, silos.Count);
        Assert.All(silos, silo =>
        {
            Assert.Equal("Active", silo.GetProperty("status").GetString());
            Assert.True(silo.GetProperty("rooms").GetInt32() >= 0 && silo.GetProperty("users").GetInt32() >= 0);
        });

        // The user grain of the connected user is active on one of them.
        Assert.True(silos.Sum(s => s.GetProperty("users").GetInt32()) >= 1, $"No user grain active: {info}");
    });

    [Fact]
    public Task Disconnect_AskedOfOneFrontend_ClosesTheUsersSocketsOnBothWith1008() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var (fe1, fe2) = (fixture.Cluster.Frontends[0], fixture.Cluster.Frontends[1]);
        var user = Names.Unique("mallory");
        await using var onFirst = await WsClient.ConnectAsync(fe1.WsBase, user);
        await using var onSecond = await WsClient.ConnectAsync(fe2.WsBase, user);
        await using var bob = await WsClient.ConnectAsync(fe2.WsBase, Names.Unique("bob"));

        var reply = await PostJsonAsync(Api(fe1, $"/api/chat/users/{user}/disconnect"), """{"reason":"Closed across the cluster."}""");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(2, reply.Json.GetProperty("closed").GetInt32());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await onFirst.Closed.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await onSecond.Closed.WaitAsync(TimeSpan.FromSeconds(15)));
        var room = Names.Unique("room");
        await bob.JoinAsync(room);
        await bob.PublishAsync(room, "still here");
        Assert.True(bob.IsOpen);
    });

    [Fact]
    public Task Nginx_ApiPaths_NotForwarded() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var nginx = fixture.Cluster.Nginx!;
        var through = new Uri(nginx.Healthz, "/api/info");

        using var response = await Http.GetAsync(through);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        using var json = JsonDocument.Parse(body);
        Assert.Contains("own port", json.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    });

    private static Uri Api(FrontendProcess frontend, string path) => new(frontend.Healthz, path);

    private static async Task<JsonElement> GetJsonAsync(Uri uri)
    {
        using var response = await Http.GetAsync(uri);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {uri}: {(int)response.StatusCode} {body}");
        using var json = JsonDocument.Parse(body);
        return json.RootElement.Clone();
    }

    private static async Task<(HttpStatusCode Status, JsonElement Json)> PostJsonAsync(Uri uri, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await Http.PostAsync(uri, content);
        var body = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(body);
        return (response.StatusCode, document.RootElement.Clone());
    }
}
