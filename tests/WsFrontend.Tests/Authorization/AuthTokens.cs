using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>Real HS256 tokens signed in the test, with an optional "rooms" claim.</summary>
public static class AuthTokens
{
    public const string Key = "authorization-tests-signing-key-32-bytes+";

    /// <summary>
    /// A token for <paramref name="subject"/>. <paramref name="rooms"/>: the "rooms" claim as JSON
    /// (an object), or, with <paramref name="roomsAsString"/>, as a JSON string holding it.
    /// <paramref name="expires"/>: whole seconds; null makes a token without "exp".
    /// </summary>
    public static string Create(string subject, string? rooms = null, DateTimeOffset? expires = null, bool noExpiry = false, bool roomsAsString = false, string key = Key)
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object>();
        if (rooms is not null)
        {
            using var document = JsonDocument.Parse(rooms);
            claims["rooms"] = roomsAsString ? rooms : document.RootElement.Clone();
        }

        var descriptor = new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", subject)]),
            Claims = claims,
            NotBefore = now.AddMinutes(-1).UtcDateTime,
            IssuedAt = now.AddMinutes(-1).UtcDateTime,
            Expires = noExpiry ? null : (expires ?? now.AddHours(1)).UtcDateTime,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = !noExpiry }.CreateToken(descriptor);
    }

    /// <summary>A "rooms" claim granting <paramref name="capabilities"/> for each pattern in namespace <paramref name="ns"/>.</summary>
    public static string Rooms(string ns, params (string Pattern, string[] Capabilities)[] grants) =>
        JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, string[]>>
        {
            [ns] = grants.ToDictionary(g => g.Pattern, g => g.Capabilities),
        });

    public static readonly string[] All = ["join", "publish", "presence", "history"];

    /// <summary>Whole seconds from now (a token's exp is whole seconds).</summary>
    public static DateTimeOffset In(TimeSpan span) => DateTimeOffset.FromUnixTimeSeconds((DateTimeOffset.UtcNow + span).ToUnixTimeSeconds());

    /// <summary>Connects to <paramref name="ns"/> with <paramref name="token"/> in ?token=.</summary>
    public static Task<TestClient> ConnectWithTokenAsync(this BrokerServer server, string ns, string token) =>
        server.ConnectAsync($"/{ns}?token={Uri.EscapeDataString(token)}");

    public static Task<JsonElement> Request(this TestClient client, string type, string room) =>
        client.RequestAsync(new Dictionary<string, object?> { ["type"] = type, ["room"] = room });

    public static Task<JsonElement> RefreshAsync(this TestClient client, string token) =>
        client.RequestAsync(new Dictionary<string, object?> { ["type"] = "refresh", ["token"] = token });

    /// <summary>The connection still works: a ping is answered.</summary>
    public static async Task AssertAliveAsync(this TestClient client)
    {
        var pong = await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" });
        Assert.Equal("pong", pong.GetProperty("type").GetString());
    }

    public static void AssertError(JsonElement frame, string code, params string[] mentions)
    {
        Assert.True(frame.GetProperty("type").GetString() == "error", $"Expected an error {code}, got {frame}");
        Assert.Equal(code, frame.GetProperty("code").GetString());
        var message = frame.GetProperty("message").GetString()!;
        foreach (var mention in mentions)
        {
            Assert.Contains(mention, message, StringComparison.Ordinal);
        }
    }

    public static void AssertType(JsonElement frame, string type) =>
        Assert.True(frame.GetProperty("type").GetString() == type, $"Expected {type}, got {frame}");
}
