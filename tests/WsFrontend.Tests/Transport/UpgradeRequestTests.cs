using System.Buffers;
using System.Text;
using Broker.Transport;

namespace Broker.Frontend.Tests.Transport;

/// <summary>
/// The broker transport's upgrade parser as a unit: what it takes, and everything it leaves to
/// Kestrel (which answers it, or reads it, its own way) so that the two never read one request
/// two ways.
/// </summary>
public sealed class UpgradeRequestTests
{
    private const int MaxHead = 8192 + 32768;
    private const string Key = "dGhlIHNhbXBsZSBub25jZQ==";

    private static string Head(string requestLine = "GET /chat?user=a&token=t HTTP/1.1", string extra = "", string eol = "\r\n") =>
        $"{requestLine}{eol}Host: example{eol}Upgrade: websocket{eol}Connection: keep-alive, Upgrade{eol}Sec-WebSocket-Key: {Key}{eol}" +
        $"Sec-WebSocket-Version: 13{eol}Origin: https://a.example{eol}Authorization: Bearer abc{eol}{extra}{eol}";

    [Fact]
    public void TryParse_PlainUpgrade_ParsedWithItsParts()
    {
        var head = Head();
        var bytes = Encoding.ASCII.GetBytes(head + "trailing frame bytes");

        var status = UpgradeRequest.TryParse(new ReadOnlySequence<byte>(bytes), MaxHead, 100, out var request, out var length);

        Assert.Equal(UpgradeRequest.ParseStatus.Parsed, status);
        Assert.Equal(head.Length, length);
        Assert.Equal("/chat", request!.Path);
        Assert.Equal("?user=a&token=t", request.Query);
        Assert.Equal("https://a.example", request.Origin);
        Assert.Equal("Bearer abc", request.Authorization);
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", request.AcceptKey());
    }

    [Fact]
    public void TryParse_ArrivingOneByteAtATime_NeedMoreUntilTheBlankLineThenParsed()
    {
        var bytes = Encoding.ASCII.GetBytes(Head());
        long scanned = 0;
        for (var end = 1; end < bytes.Length; end++)
        {
            var status = UpgradeRequest.TryParse(new ReadOnlySequence<byte>(bytes, 0, end), MaxHead, 100, ref scanned, out _, out _);
            Assert.True(status == UpgradeRequest.ParseStatus.NeedMore, $"After {end} bytes: {status}.");
            Assert.True(scanned <= end);
        }

        Assert.Equal(UpgradeRequest.ParseStatus.Parsed, UpgradeRequest.TryParse(new ReadOnlySequence<byte>(bytes), MaxHead, 100, ref scanned, out var request, out _));
        Assert.Equal("/chat", request!.Path);
    }

    [Fact]
    public void TryParse_HeadSplitAcrossSegments_Parsed()
    {
        var bytes = Encoding.ASCII.GetBytes(Head());
        for (var split = 1; split < bytes.Length; split += 7)
        {
            var sequence = WebSocketFrameCodecTests.Segments(bytes[..split], bytes[split..]);
            Assert.Equal(UpgradeRequest.ParseStatus.Parsed, UpgradeRequest.TryParse(sequence, MaxHead, 100, out _, out var length));
            Assert.Equal(bytes.Length, length);
        }
    }

    [Theory]
    [InlineData(100, UpgradeRequest.ParseStatus.Parsed)]
    [InlineData(101, UpgradeRequest.ParseStatus.NotOurs)]
    public void TryParse_HeaderCount_AtMostTheLimit(int headers, UpgradeRequest.ParseStatus expected)
    {
        // Head() has 7 headers.
        var extra = string.Concat(Enumerable.Range(0, headers - 7).Select(i => $"X-{i}: v\r\n"));

        Assert.Equal(expected, Parse(Head(extra: extra)));
    }

    [Theory]
    [InlineData("GET /chat HTTP/1.0", "HTTP/1.0")]
    [InlineData("POST /chat HTTP/1.1", "another method")]
    [InlineData("GET /chat%2F HTTP/1.1", "an escape in the path")]
    [InlineData("GET /chat/../x HTTP/1.1", "a dot segment")]
    [InlineData("GET  /chat HTTP/1.1", "two spaces")]
    [InlineData("GET http://a/chat HTTP/1.1", "an absolute target")]
    public void TryParse_UnusualRequestLine_NotOurs(string requestLine, string what) =>
        Assert.True(Parse(Head(requestLine)) == UpgradeRequest.ParseStatus.NotOurs, what);

    [Theory]
    [InlineData("Host: again\r\n", "a second Host")]
    [InlineData("Sec-WebSocket-Key: " + Key + "\r\n", "a second key")]
    [InlineData("Content-Length: 3\r\n", "a body")]
    [InlineData("Transfer-Encoding: chunked\r\n", "a chunked body")]
    [InlineData(" folded\r\n", "a folded line")]
    [InlineData("Bad Name: v\r\n", "a space in a name")]
    [InlineData("NoColon\r\n", "no colon")]
    [InlineData("X-Nul: a\0b\r\n", "a NUL")]
    [InlineData("X-High: caf\u00e9\r\n", "a byte over 0x7E")]
    public void TryParse_UnusualHeaders_NotOurs(string extra, string what) =>
        Assert.True(Parse(Head(extra: extra), latin1: true) == UpgradeRequest.ParseStatus.NotOurs, what);

    [Theory]
    [InlineData("X-Pad: a\nUpgrade: websocket\r\n", "a bare LF inside the head")]
    [InlineData("X-Pad: a\rUpgrade: websocket\r\n", "a bare CR inside the head")]
    public void TryParse_BareLineEnds_NotOursAtOnce(string extra, string what)
    {
        // Left to Kestrel as soon as the bare line end has arrived, head complete or not.
        var head = Head(extra: extra);
        var upToIt = head[..(head.IndexOf(extra, StringComparison.Ordinal) + extra.IndexOfAny(['\r', '\n']) + 2)];

        Assert.True(Parse(upToIt) == UpgradeRequest.ParseStatus.NotOurs, what);
    }

    [Fact]
    public void TryParse_AllLinesEndingInBareLf_NotOurs() =>
        Assert.Equal(UpgradeRequest.ParseStatus.NotOurs, Parse(Head(eol: "\n")));

    [Fact]
    public void TryParse_CrAsTheLastByteSoFar_NeedMore() =>
        Assert.Equal(UpgradeRequest.ParseStatus.NeedMore, Parse("GET /chat HTTP/1.1\r"));

    [Theory]
    [InlineData("Upgrade: websocket", "Upgrade: h2c", "another protocol")]
    [InlineData("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", "another version")]
    [InlineData("Sec-WebSocket-Key: " + Key, "Sec-WebSocket-Key: short", "a bad key")]
    [InlineData("Connection: keep-alive, Upgrade", "Connection: keep-alive", "no upgrade token")]
    public void TryParse_NotAValidVersion13Upgrade_NotOurs(string header, string replacement, string what) =>
        Assert.True(Parse(Head().Replace(header, replacement, StringComparison.Ordinal)) == UpgradeRequest.ParseStatus.NotOurs, what);

    [Fact]
    public void TryParse_HeadLongerThanTheLimit_NotOurs()
    {
        Assert.Equal(UpgradeRequest.ParseStatus.NotOurs, Parse(Head(extra: $"X-Long: {new string('a', 200)}\r\n"), maxHead: 200));
        Assert.Equal(UpgradeRequest.ParseStatus.NotOurs, Parse($"GET /chat HTTP/1.1\r\nX-Long: {new string('a', 300)}", maxHead: 200));
    }

    [Theory]
    [InlineData("G")]
    [InlineData("GE")]
    [InlineData("GET")]
    public void TryParse_FirstBytesOfAGet_NeedMore(string start) =>
        Assert.Equal(UpgradeRequest.ParseStatus.NeedMore, Parse(start));

    private static UpgradeRequest.ParseStatus Parse(string head, int maxHead = MaxHead, bool latin1 = false) =>
        UpgradeRequest.TryParse(new ReadOnlySequence<byte>((latin1 ? Encoding.Latin1 : Encoding.ASCII).GetBytes(head)), maxHead, 100, out _, out _);
}
