using System.Net;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text;
using Broker.Frontend.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Tests.Identity;

public sealed class JwtTests : IAsyncLifetime
{
    private const string Key = "test-signing-key-of-at-least-32-bytes!!";
    private BrokerServer _server = null!;

    public async Task InitializeAsync() => _server = await BrokerServer.StartAsync(new Dictionary<string, string?>
    {
        ["Broker:Jwt:SigningKey"] = Key,
        ["Broker:Jwt:Issuer"] = "tests",
        ["Broker:Namespaces:private:Anonymous"] = "false",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Connect_ValidTokenQuery_UserIsSubject()
    {
        await using var client = await _server.ConnectAsync("/private?token=" + Token("carol"));

        Assert.Equal("carol", client.User);
    }

    [Fact]
    public async Task Connect_ValidBearerHeader_UserIsSubjectAndWinsOverUserQuery()
    {
        await using var client = await TestClient.ConnectAsync(
            _server.Ws("/chat?user=mallory"),
            configure: o => o.SetRequestHeader("Authorization", "Bearer " + Token("dave")));

        Assert.Equal("dave", client.User);

        // Without the token the same ?user= is refused: with a key configured, the shipped
        // namespaces take verified users only (protocol.md v1.1 "Identity").
        Assert.Equal(HttpStatusCode.Unauthorized, await HandshakeStatusAsync(_server.Ws("/chat?user=mallory")));
    }

    [Theory]
    [InlineData("wrong-key")]
    [InlineData("wrong-issuer")]
    [InlineData("expired")]
    [InlineData("no-subject")]
    public async Task Connect_BadToken_Http401(string kind)
    {
        var token = kind switch
        {
            "wrong-key" => Token("eve", key: "another-signing-key-of-32-bytes-or-more"),
            "wrong-issuer" => Token("eve", issuer: "someone-else"),
            "expired" => Token("eve", lifetime: TimeSpan.FromMinutes(-5)),
            _ => Token(null),
        };

        var status = await HandshakeStatusAsync(_server.Ws("/private?token=" + token));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task Connect_NoTokenWhereAnonymousIsOff_Http401()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await HandshakeStatusAsync(_server.Ws("/private")));
        Assert.Equal(HttpStatusCode.Unauthorized, await HandshakeStatusAsync(_server.Ws("/private?user=alice")));
    }

    [Fact]
    public async Task Connection_TokenExpires_ClosedWith1008()
    {
        // A token's exp is whole seconds, so this one lives 4-5 s: long enough for the welcome to
        // arrive first even on a loaded machine (with 2 s it once expired before the welcome).
        await using var client = await _server.ConnectAsync("/private?token=" + Token("frank", lifetime: TimeSpan.FromSeconds(5)));

        var status = await client.WaitForCloseAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, status);
    }

    private static string Token(string? subject, string key = Key, string issuer = "tests", TimeSpan? lifetime = null)
    {
        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromHours(1));
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Subject = subject is null ? new ClaimsIdentity() : new ClaimsIdentity([new Claim("sub", subject)]),
            NotBefore = expires < now ? expires.AddMinutes(-1) : now.AddMinutes(-1),
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now.AddMinutes(-1),
            Expires = expires,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }

    private static async Task<HttpStatusCode> HandshakeStatusAsync(Uri uri)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        try
        {
            await socket.ConnectAsync(uri, CancellationToken.None);
            return HttpStatusCode.SwitchingProtocols;
        }
        catch (WebSocketException)
        {
            return socket.HttpStatusCode;
        }
    }
}
