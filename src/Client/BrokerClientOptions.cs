using System.Text.Json;

namespace Broker.Client;

/// <summary>How a <see cref="BrokerClient"/> identifies itself, and how patient it is.</summary>
public sealed class BrokerClientOptions
{
    /// <summary>An unverified user name (<c>?user=</c>), where the namespace allows anonymous users.</summary>
    public string? User { get; set; }

    /// <summary>A JWT sent as <c>Authorization: Bearer</c> on every connect.</summary>
    public string? Token { get; set; }

    /// <summary>
    /// Returns a current JWT; called on every connect and before the token's <c>exp</c>, when it is
    /// sent on the open connection as a <c>refresh</c> frame. Takes precedence over <see cref="Token"/>.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? GetToken { get; set; }

    /// <summary>How long to wait for a reply to a request (join, presence, history, send, a publish attempt). Default 10 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one connection attempt (handshake and welcome) may take. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The first reconnect delay; it doubles per failed attempt, with jitter. Default 250 ms.</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest reconnect delay. Default 10 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The least delay after a close with 1013 (overloaded, try again later). Default 1 s.</summary>
    public TimeSpan OverloadedDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long before the token's <c>exp</c> it is refreshed (with <see cref="GetToken"/>). Default 30 s.</summary>
    public TimeSpan RefreshBeforeExpiry { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The WebSocket keep-alive (protocol ping) interval. Default 30 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How <see cref="BrokerRoom.PublishAsync{T}(T, CancellationToken)"/> and <see cref="BrokerClient.SendAsync{T}(string, T, CancellationToken)"/> serialize data. Default: <see cref="JsonSerializerOptions.Web"/>.</summary>
    public JsonSerializerOptions SerializerOptions { get; set; } = JsonSerializerOptions.Web;

    internal void Validate()
    {
        if (User is not null && (Token is not null || GetToken is not null))
        {
            throw new ArgumentException("Give either User or Token/GetToken, not both.");
        }

        foreach (var (name, value) in new[] { (nameof(RequestTimeout), RequestTimeout), (nameof(ConnectTimeout), ConnectTimeout), (nameof(ReconnectDelay), ReconnectDelay), (nameof(MaxReconnectDelay), MaxReconnectDelay) })
        {
            if (value <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
            }
        }

        if (MaxReconnectDelay < ReconnectDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxReconnectDelay), MaxReconnectDelay, "MaxReconnectDelay must not be less than ReconnectDelay.");
        }
    }
}
