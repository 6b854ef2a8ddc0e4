using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Microsoft.Extensions.Configuration;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>Authorize, ProxyUrl and ProxyTimeout: bound from configuration, validated at start; the refresh frame's parsing.</summary>
public sealed class AuthorizationOptionsTests
{
    private static BrokerOptions Bind(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>("Broker:" + s.Key, s.Value)))
            .Build();
        var options = new BrokerOptions();
        configuration.GetSection(BrokerOptions.SectionName).Bind(options);
        return options;
    }

    [Fact]
    public void Defaults_OpenWithTwoSecondProxyTimeout()
    {
        var ns = new NamespaceOptions();

        Assert.Equal(RoomAuthorization.Open, ns.Authorize);
        Assert.Null(ns.ProxyUrl);
        Assert.Equal(TimeSpan.FromSeconds(2), ns.ProxyTimeout);
        Assert.All(new BrokerOptions().Namespaces.Values, n => Assert.Equal(RoomAuthorization.Open, n.Authorize));
    }

    [Theory]
    [InlineData("token", RoomAuthorization.Token)]
    [InlineData("TOKEN", RoomAuthorization.Token)]
    [InlineData("Proxy", RoomAuthorization.Proxy)]
    [InlineData("open", RoomAuthorization.Open)]
    public void Bind_AuthorizeAnyCase_IncludingNamespacesOnlyInConfiguration(string value, RoomAuthorization mode)
    {
        var options = Bind(("Namespaces:team:Authorize", value), ("Namespaces:team:ProxyUrl", "https://app.example/authorize"), ("Namespaces:chat:Authorize", value));

        Assert.Equal(mode, options.Namespaces["team"].Authorize);
        Assert.Equal(mode, options.Namespaces["chat"].Authorize);
        Assert.Equal(RoomAuthorization.Open, options.Namespaces["default"].Authorize);
    }

    [Fact]
    public void Validate_ProxyWithoutUrl_SaysWhatToSet()
    {
        var failure = Assert.Single(Bind(("Namespaces:team:Authorize", "Proxy")).Validate());

        Assert.Contains("Broker:Namespaces:team:ProxyUrl", failure, StringComparison.Ordinal);
        Assert.Contains("Authorize=Proxy", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/authorize")]
    [InlineData("authorize")]
    [InlineData("ftp://app.example/authorize")]
    [InlineData("file:///etc/passwd")]
    [InlineData("not a url")]
    public void Validate_ProxyUrlNotAbsoluteHttp_Refused(string url)
    {
        var failure = Assert.Single(Bind(("Namespaces:team:Authorize", "Proxy"), ("Namespaces:team:ProxyUrl", url)).Validate());

        Assert.Contains("absolute http:// or https:// URL", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9000/authorize")]
    [InlineData("https://app.example/rooms/authorize?key=k")]
    public void Validate_ProxyUrlAbsoluteHttp_Accepted(string url)
    {
        Assert.Empty(Bind(("Namespaces:team:Authorize", "Proxy"), ("Namespaces:team:ProxyUrl", url)).Validate());
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("-00:00:01")]
    public void Validate_ProxyTimeoutNotPositive_Refused(string timeout)
    {
        var failure = Assert.Single(Bind(("Namespaces:chat:ProxyTimeout", timeout)).Validate());

        Assert.Contains("Broker:Namespaces:chat:ProxyTimeout", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AuthorizeUndefinedNumber_Refused()
    {
        var failure = Assert.Single(Bind(("Namespaces:chat:Authorize", "7")).Validate());

        Assert.Contains("Open, Token or Proxy", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_Refresh_TokenRead()
    {
        var parser = new FrameParser(200);

        Assert.True(parser.TryParse("""{"type":"refresh","token":"a.b.c","id":7}"""u8, out var frame, out _));
        Assert.Equal(ClientFrameType.Refresh, frame.Type);
        Assert.Equal("a.b.c", frame.Token);
        Assert.Equal("7"u8.ToArray(), frame.Id);
    }

    [Theory]
    [InlineData("""{"type":"refresh"}""", ErrorCodes.BadRequest)]
    [InlineData("""{"type":"refresh","token":null}""", ErrorCodes.BadRequest)]
    [InlineData("""{"type":"refresh","token":""}""", ErrorCodes.BadRequest)]
    [InlineData("""{"type":"refresh","token":["a"]}""", ErrorCodes.BadRequest)]
    [InlineData("""{"type":"refresh","token":"\ud800"}""", ErrorCodes.BadRequest)]
    public void Parse_RefreshWithoutAToken_BadRequest(string text, string code)
    {
        Assert.False(new FrameParser(200).TryParse(System.Text.Encoding.UTF8.GetBytes(text), out _, out var error));
        Assert.Equal(code, error.Code);
    }

    [Fact]
    public void Parse_RefreshTokenAtAndOverTheLimit_AcceptedThenTooLarge()
    {
        var parser = new FrameParser(200);
        string Frame(int length) => $$"""{"type":"refresh","token":"{{new string('t', length)}}"}""";

        Assert.True(parser.TryParse(System.Text.Encoding.UTF8.GetBytes(Frame(FrameParser.MaxTokenLength)), out _, out _));
        Assert.False(parser.TryParse(System.Text.Encoding.UTF8.GetBytes(Frame(FrameParser.MaxTokenLength + 1)), out _, out var error));
        Assert.Equal(ErrorCodes.TooLarge, error.Code);
    }
}
