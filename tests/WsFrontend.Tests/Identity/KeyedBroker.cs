using System.Net;
using System.Security.Cryptography;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// A broker with every kind of configured key: the HMAC signing key (32 bytes), an RSA public
/// key as PEM text and an EC P-256 public key in a PEM file. Besides the shipped namespaces:
/// "lobby", which exists only in configuration and turns Anonymous on, and "orders", which
/// exists only in configuration and leaves it to the default.
/// </summary>
public sealed class KeyedBroker : IAsyncLifetime
{
    private readonly string _ecPemFile = Path.Combine(Path.GetTempPath(), $"broker-test-ec-{Guid.NewGuid():N}.pem");

    public BrokerServer Server { get; private set; } = null!;

    public RSA Rsa { get; } = RSA.Create(2048);

    public ECDsa Ecdsa { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(_ecPemFile, Ecdsa.ExportSubjectPublicKeyInfoPem());
        Server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Jwt:SigningKey"] = TestTokens.HmacKey,
            ["Broker:Jwt:PublicKeys:0"] = Rsa.ExportSubjectPublicKeyInfoPem(),
            ["Broker:Jwt:PublicKeys:1"] = _ecPemFile,
            ["Broker:Namespaces:lobby:Anonymous"] = "true",
            ["Broker:Namespaces:orders:History"] = "5",
        });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        File.Delete(_ecPemFile);
        Rsa.Dispose();
        Ecdsa.Dispose();
    }
}

/// <summary>Handshakes whose refusal a test reads whole: status and one-line body.</summary>
internal static class Handshake
{
    public static async Task<WireHttpResponse> RefusalAsync(BrokerServer server, string pathAndQuery)
    {
        using var client = await WireConnection.ConnectAsync(server);
        await client.WriteAsync(WireConnection.UpgradeRequest(server, pathAndQuery, WireConnection.NewKey()));
        var response = await client.ReadHttpResponseAsync($"the response to an upgrade to {pathAndQuery}");
        Assert.NotEqual((int)HttpStatusCode.SwitchingProtocols, response.Status);
        return response;
    }

    /// <summary>The refusal's status, with a check that its body is one sentence on one line.</summary>
    public static async Task<int> RefusedStatusAsync(BrokerServer server, string pathAndQuery, string? bodyContains = null)
    {
        var response = await RefusalAsync(server, pathAndQuery);
        var body = response.Body.TrimEnd('\n', '\r');
        Assert.False(string.IsNullOrWhiteSpace(body), $"The {response.Status} for {pathAndQuery} has no body.");
        Assert.DoesNotContain('\n', body);
        if (bodyContains is not null)
        {
            Assert.Contains(bodyContains, body, StringComparison.Ordinal);
        }

        return response.Status;
    }
}
