using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>A real HttpClient against a broker's server API; every reply is read whole, with its JSON when it is JSON.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    public ApiClient(BrokerServer server, string? key = null)
    {
        _http = new HttpClient { BaseAddress = server.HttpBase, Timeout = TestClient.DefaultTimeout };
        if (key is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
    }

    /// <summary>A body of these exact bytes, sent as Content-Type: application/json.</summary>
    public static HttpContent Json(byte[] utf8, string contentType = "application/json")
    {
        var content = new ByteArrayContent(utf8);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    public static HttpContent Json(string json, string contentType = "application/json") => Json(Encoding.UTF8.GetBytes(json), contentType);

    public Task<ApiReply> PostJsonAsync(string path, string json, Action<HttpRequestMessage>? configure = null) =>
        SendAsync(HttpMethod.Post, path, Json(json), configure);

    public Task<ApiReply> PostAsync(string path, HttpContent? content, Action<HttpRequestMessage>? configure = null) =>
        SendAsync(HttpMethod.Post, path, content, configure);

    public Task<ApiReply> GetAsync(string path, Action<HttpRequestMessage>? configure = null) =>
        SendAsync(HttpMethod.Get, path, null, configure);

    public async Task<ApiReply> SendAsync(HttpMethod method, string path, HttpContent? content, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, path.TrimStart('/')) { Content = content };
        configure?.Invoke(request);
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ApiReply.Of(response, text);
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>An HTTP reply: status, headers (response and content together), the body's text and its JSON.</summary>
internal sealed record ApiReply(HttpStatusCode Status, string Text, JsonElement Json, IReadOnlyDictionary<string, string> Headers, string? ContentType)
{
    public static ApiReply Of(HttpResponseMessage response, string text)
    {
        var headers = response.Headers.Concat(response.Content.Headers)
            .ToDictionary(h => h.Key, h => string.Join(", ", h.Value), StringComparer.OrdinalIgnoreCase);
        JsonElement json = default;
        try
        {
            using var document = JsonDocument.Parse(text);
            json = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            // Not JSON: the tests that expect JSON say so.
        }

        return new ApiReply(response.StatusCode, text, json, headers, response.Content.Headers.ContentType?.ToString());
    }

    /// <summary>The error code of a JSON error reply ({"error","code"}), asserting that shape.</summary>
    public string ErrorCode
    {
        get
        {
            Assert.True(Json.ValueKind == JsonValueKind.Object, $"Expected a JSON error body, got: {Text}");
            Assert.False(string.IsNullOrWhiteSpace(Json.GetProperty("error").GetString()), $"The error has no sentence: {Text}");
            Assert.StartsWith("application/json", ContentType, StringComparison.Ordinal);
            return Json.GetProperty("code").GetString()!;
        }
    }

    public string Error => Json.GetProperty("error").GetString()!;

    public ApiReply AssertStatus(HttpStatusCode expected)
    {
        Assert.True(Status == expected, $"Expected {(int)expected} {expected}, got {(int)Status} {Status}: {Text}");
        return this;
    }
}
