using System.Text;
using Broker.Frontend.Protocol;

namespace Broker.Frontend.Tests.Units;

/// <summary>The frame parser's rules, as a pure type: bytes in, a frame or an error out.</summary>
public sealed class FrameParserTests
{
    private const int MaxNameLength = 200;
    private readonly FrameParser _parser = new(MaxNameLength);

    public static TheoryData<string> LoneSurrogateFrames => new()
    {
        """{"type":"\ud800"}""",
        """{"type":"join","room":"\ud800"}""",
        """{"type":"join","room":"a\udc00b"}""",
        """{"type":"join","room":"r","epoch":"\udbff"}""",
        """{"type":"publish","room":"r","msgId":"\ud800x","data":1}""",
        """{"type":"send","to":"\ud800","data":1}""",
        """{"type":"echo","data":"\ud800"}""",
        """{"type":"echo","data":{"nested":["ok",{"deep":"\udfff"}]}}""",
        """{"type":"echo","data":{"\ud800":1}}""",
        """{"type":"ping","\ud800":1}""",
        """{"type":"ping","other":"\ud800"}""",
        """{"type":"ping","other":"\ud800\ud800"}""",
        """{"type":"ping","other":"\ud800\u0041"}""",
        """{"type":"ping","other":"\udc00\ud800"}""",
        """{"\ud800":"ping"}""",
    };

    [Theory]
    [MemberData(nameof(LoneSurrogateFrames))]
    public void TryParse_LoneSurrogateInAnyString_BadRequestWithoutThrowing(string text)
    {
        var parsed = _parser.TryParse(Encoding.UTF8.GetBytes(text), out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.BadRequest, error.Code);
        Assert.Contains("lone surrogate", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_LoneSurrogateInRoom_ErrorNamesTheFieldAndKeepsTheId()
    {
        var parsed = _parser.TryParse("""{"type":"join","id":7,"room":"\ud800"}"""u8, out _, out var error);

        Assert.False(parsed);
        Assert.Equal("7", Encoding.UTF8.GetString(error.Id));
        Assert.StartsWith("\"room\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_LoneSurrogateInId_ErrorCarriesNoId()
    {
        var parsed = _parser.TryParse("""{"type":"ping","id":"\ud800"}"""u8, out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.BadRequest, error.Code);
        Assert.Empty(error.Id);
    }

    [Theory]
    [InlineData("""{"type":"join","room":"\ud83d\ude00"}""", "\U0001F600")]
    [InlineData("""{"type":"join","room":"\uD83D\uDE00x"}""", "\U0001F600x")]
    [InlineData("""{"type":"join","room":"\\ud800"}""", "\\ud800")]
    [InlineData("""{"type":"join","room":"\"\u00e9\n"}""", "\"é\n")]
    [InlineData("""{"type":"join","room":"żółw"}""", "żółw")]
    public void TryParse_WellFormedEscapes_Decoded(string text, string room)
    {
        var parsed = _parser.TryParse(Encoding.UTF8.GetBytes(text), out var frame, out var error);

        Assert.True(parsed, error.Message);
        Assert.Equal(room, frame.Room);
    }

    [Fact]
    public void TryParse_SurrogatePairInData_DataKeptByteForByte()
    {
        const string data = """{"s":"\ud83d\ude00","n":[1,2.5e3,null,true]}""";

        var parsed = _parser.TryParse(Encoding.UTF8.GetBytes($$"""{"type":"echo","data":{{data}}}"""), out var frame, out _);

        Assert.True(parsed);
        Assert.Equal(data, Encoding.UTF8.GetString(frame.Data!));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData(" \r\n", "empty")]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1,2]", "JSON object")]
    [InlineData("\"ping\"", "JSON object")]
    [InlineData("{\"type\":\"ping\"} {}", "not valid JSON")]
    [InlineData("{\"type\":\"ping\"", "not valid JSON")]
    [InlineData("{}", "needs a \"type\"")]
    [InlineData("{\"type\":1}", "\"type\" must be a string")]
    [InlineData("{\"type\":\"ping\",\"id\":{}}", "\"id\" must be a number or a string")]
    [InlineData("{\"type\":\"join\"}", "needs a \"room\"")]
    [InlineData("{\"type\":\"join\",\"room\":\"\"}", "non-empty string")]
    [InlineData("{\"type\":\"join\",\"room\":5}", "non-empty string")]
    [InlineData("{\"type\":\"publish\",\"room\":\"r\"}", "needs a \"data\"")]
    [InlineData("{\"type\":\"send\",\"data\":1}", "needs a \"to\"")]
    [InlineData("{\"type\":\"join\",\"room\":\"r\",\"since\":-1}", "\"since\"")]
    [InlineData("{\"type\":\"join\",\"room\":\"r\",\"since\":1.5}", "\"since\"")]
    [InlineData("{\"type\":\"join\",\"room\":\"r\",\"since\":1e400}", "\"since\"")]
    [InlineData("{\"type\":\"join\",\"room\":\"r\",\"since\":99999999999999999999999}", "\"since\"")]
    [InlineData("{\"type\":\"join\",\"room\":\"r\",\"epoch\":1}", "\"epoch\"")]
    [InlineData("{\"type\":\"history\",\"room\":\"r\",\"limit\":0}", "\"limit\"")]
    [InlineData("{\"type\":\"publish\",\"room\":\"r\",\"data\":1,\"msgId\":3}", "\"msgId\"")]
    [InlineData("{\"type\":\"echo\",\"data\":\"\\x\"}", "not valid JSON")]
    [InlineData("{\"type\":\"echo\",\"data\":\"\\u12\"}", "not valid JSON")]
    public void TryParse_Malformed_BadRequestWithASentence(string text, string says)
    {
        var parsed = _parser.TryParse(Encoding.UTF8.GetBytes(text), out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.BadRequest, error.Code);
        Assert.Contains(says, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_InvalidUtf8_BadRequest()
    {
        var parsed = _parser.TryParse([(byte)'{', 0xFF, (byte)'}'], out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.BadRequest, error.Code);
    }

    [Fact]
    public void TryParse_NestingPastMaxDepth_BadRequest()
    {
        var deep = "{\"type\":\"echo\",\"data\":" + new string('[', 100) + new string(']', 100) + "}";

        var parsed = _parser.TryParse(Encoding.UTF8.GetBytes(deep), out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.BadRequest, error.Code);
    }

    [Fact]
    public void TryParse_UnknownType_UnknownTypeWithTheId()
    {
        var parsed = _parser.TryParse("""{"type":"dance","id":"x"}"""u8, out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.UnknownType, error.Code);
        Assert.Equal("\"x\"", Encoding.UTF8.GetString(error.Id));
    }

    [Fact]
    public void TryParse_NameOverMaxNameLength_TooLarge()
    {
        var text = $$"""{"type":"join","room":"{{new string('r', MaxNameLength + 1)}}"}""";

        var parsed = _parser.TryParse(Encoding.UTF8.GetBytes(text), out _, out var error);

        Assert.False(parsed);
        Assert.Equal(ErrorCodes.TooLarge, error.Code);
    }

    [Fact]
    public void TryParse_EveryField_Read()
    {
        var parsed = _parser.TryParse(
            """{"id":0.5,"type":"join","room":"r","since":3,"epoch":"e1","limit":4,"unknown":{"a":[1]}}"""u8,
            out var frame,
            out _);

        Assert.True(parsed);
        Assert.Equal(ClientFrameType.Join, frame.Type);
        Assert.Equal("0.5", Encoding.UTF8.GetString(frame.Id));
        Assert.Equal("r", frame.Room);
        Assert.Equal(3, frame.Since);
        Assert.Equal("e1", frame.Epoch);
        Assert.Null(frame.Limit);
        Assert.Null(frame.Data);
    }

    [Fact]
    public void TryParse_HistoryLimitPastInt32_Clamped()
    {
        var parsed = _parser.TryParse("""{"type":"history","room":"r","limit":9999999999}"""u8, out var frame, out _);

        Assert.True(parsed);
        Assert.Equal(int.MaxValue, frame.Limit);
    }

    [Fact]
    public void TryParse_DataNull_PresentAsNull()
    {
        var parsed = _parser.TryParse("""{"type":"echo","data":null}"""u8, out var frame, out _);

        Assert.True(parsed);
        Assert.Equal("null", Encoding.UTF8.GetString(frame.Data!));
    }
}
