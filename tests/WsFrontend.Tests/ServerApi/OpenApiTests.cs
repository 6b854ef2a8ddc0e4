using System.Net;
using System.Text.Json;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>/openapi/v1.json: served without the key, and describes every /api route with its parameters, body and responses.</summary>
public sealed class OpenApiTests
{
    [Fact]
    public async Task OpenApi_WithAKeyConfigured_ServedWithoutItAndListsEveryApiRouteOfTheApp()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:ApiKey"] = "openapi-test-key-0123456789" });
        using var api = new ApiClient(server);

        var reply = (await api.GetAsync("/openapi/v1.json")).AssertStatus(HttpStatusCode.OK);

        var paths = reply.Json.GetProperty("paths");
        var documented = paths.EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(op => $"{op.Name.ToUpperInvariant()} {p.Name}"))
            .Order(StringComparer.Ordinal)
            .ToList();
        string[] expected =
        [
            "GET /api/info",
            "GET /api/{ns}/rooms/{room}/history",
            "GET /api/{ns}/rooms/{room}/presence",
            "POST /api/{ns}/rooms/{room}/publish",
            "POST /api/{ns}/users/{user}/disconnect",
            "POST /api/{ns}/users/{user}/send",
        ];
        Assert.Equal(expected, documented);

        // Every route the app maps under /api (but the catch-all 404) is in the document: a new
        // route without its description fails here.
        var mapped = server.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api/", StringComparison.Ordinal) == true && !e.RoutePattern.RawText.Contains("**", StringComparison.Ordinal))
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(expected, mapped);
    }

    [Fact]
    public async Task OpenApi_Operations_HaveTheirParametersBodiesResponsesAndTheKeyScheme()
    {
        await using var server = await BrokerServer.StartAsync();
        using var api = new ApiClient(server);

        var document = (await api.GetAsync("/openapi/v1.json")).AssertStatus(HttpStatusCode.OK).Json;

        var paths = document.GetProperty("paths");
        var publish = paths.GetProperty("/api/{ns}/rooms/{room}/publish").GetProperty("post");
        Assert.Equal(["ns:path", "room:path", "Idempotency-Key:header", "msgId:query"], Parameters(publish));
        Assert.True(publish.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.Equal(["200", "400", "401", "404", "413", "415", "503"], Responses(publish));
        Assert.Equal(
            ["room", "seq", "epoch", "duplicate"],
            Schema(document, publish.GetProperty("responses").GetProperty("200")).GetProperty("properties").EnumerateObject().Select(p => p.Name));

        var history = paths.GetProperty("/api/{ns}/rooms/{room}/history").GetProperty("get");
        Assert.Equal(["ns:path", "room:path", "since:query", "limit:query"], Parameters(history));
        foreach (var parameter in history.GetProperty("parameters").EnumerateArray().Where(p => p.GetProperty("in").GetString() == "query"))
        {
            Assert.Equal("integer", parameter.GetProperty("schema").GetProperty("type").GetString());
        }

        Assert.Equal(
            ["type", "room", "epoch", "messages", "more"],
            Schema(document, history.GetProperty("responses").GetProperty("200")).GetProperty("properties").EnumerateObject().Select(p => p.Name));

        var disconnect = paths.GetProperty("/api/{ns}/users/{user}/disconnect").GetProperty("post");
        Assert.False(disconnect.GetProperty("requestBody").TryGetProperty("required", out var required) && required.GetBoolean());
        Assert.Equal(["closed"], Schema(document, disconnect.GetProperty("responses").GetProperty("200")).GetProperty("properties").EnumerateObject().Select(p => p.Name));

        var info = paths.GetProperty("/api/info").GetProperty("get");
        Assert.Equal(
            ["node", "mode", "connections", "frontends", "silos"],
            Schema(document, info.GetProperty("responses").GetProperty("200")).GetProperty("properties").EnumerateObject().Select(p => p.Name));

        // Every operation names the key scheme, and every error is {error, code}.
        Assert.Equal("bearer", document.GetProperty("components").GetProperty("securitySchemes").GetProperty("apiKey").GetProperty("scheme").GetString());
        foreach (var operation in paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject()).Select(o => o.Value))
        {
            Assert.True(operation.GetProperty("security")[0].TryGetProperty("apiKey", out _));
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("summary").GetString()));
            foreach (var error in operation.GetProperty("responses").EnumerateObject().Where(r => r.Name != "200"))
            {
                Assert.Equal(["error", "code"], Schema(document, error.Value).GetProperty("properties").EnumerateObject().Select(p => p.Name));
            }
        }
    }

    [Theory]
    [InlineData("openapi")]
    [InlineData("api")]
    public void Validate_ReservedNamespaceName_Refused(string name)
    {
        var options = new BrokerOptions();
        options.Namespaces[name] = new NamespaceOptions();

        var failure = Assert.Single(options.Validate());

        Assert.Contains($"Broker:Namespaces:{name}", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("short", false)]
    [InlineData("sixteen chars ok", false)]
    [InlineData("0123456789abcdef", true)]
    [InlineData("", true)]
    public void Validate_ApiKey_AtLeastSixteenCharactersWithoutSpaces(string key, bool valid)
    {
        var failures = new BrokerOptions { ApiKey = key }.Validate().ToList();

        if (valid)
        {
            Assert.Empty(failures);
        }
        else
        {
            Assert.Contains("Broker:ApiKey", Assert.Single(failures), StringComparison.Ordinal);
        }
    }

    private static IEnumerable<string> Parameters(JsonElement operation) =>
        operation.GetProperty("parameters").EnumerateArray().Select(p => $"{p.GetProperty("name").GetString()}:{p.GetProperty("in").GetString()}");

    private static IEnumerable<string> Responses(JsonElement operation) =>
        operation.GetProperty("responses").EnumerateObject().Select(r => r.Name).Order(StringComparer.Ordinal);

    /// <summary>A response's JSON schema, following its $ref into the components.</summary>
    private static JsonElement Schema(JsonElement document, JsonElement response)
    {
        var schema = response.GetProperty("content").GetProperty("application/json").GetProperty("schema");
        if (schema.TryGetProperty("$ref", out var reference))
        {
            var name = reference.GetString()!["#/components/schemas/".Length..];
            return document.GetProperty("components").GetProperty("schemas").GetProperty(name);
        }

        return schema;
    }
}
