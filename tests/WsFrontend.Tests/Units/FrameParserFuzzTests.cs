using System.Text;
using System.Text.Json;
using Broker.Frontend.Protocol;

namespace Broker.Frontend.Tests.Units;

/// <summary>
/// Mutated frames of every type, from a fixed seed so that a failure replays: whatever the
/// bytes, TryParse answers with a frame or a known error code, and never throws.
/// </summary>
public sealed class FrameParserFuzzTests
{
    private const int Seed = 13;
    private const int Frames = 120_000;

    private static readonly string[] ValidFrames =
    [
        """{"type":"join","id":1,"room":"lobby"}""",
        """{"type":"join","id":"j","room":"lobby","since":41,"epoch":"e-1f"}""",
        """{"type":"leave","id":2,"room":"lobby"}""",
        """{"type":"publish","id":3,"room":"lobby","data":{"text":"hi \ud83d\ude00","n":[1,2.5,-3e2,true,null]},"msgId":"m-1"}""",
        """{"type":"publish","room":"r","data":"caf\u00e9 \"quoted\" \\ back\/slash \b\f\n\r\t"}""",
        """{"type":"send","id":4,"to":"bob","data":{"x":{"y":{"z":[[["deep"]]]}}}}""",
        """{"type":"presence","id":5,"room":"lobby"}""",
        """{"type":"history","id":6,"room":"lobby","since":0,"limit":10}""",
        """{"type":"echo","id":0.5,"data":[{"a":"żółw ✓"},9007199254740991]}""",
        """{"type":"ping","id":9007199254740991}""",
        """{"type":"ping","extra":{"ignored":["x",1]}}""",
    ];

    /// <summary>What an insertion may add: escapes, surrogates, structure, numbers, invalid UTF-8.</summary>
    private static readonly byte[][] Insertions =
    [
        .. new[]
        {
            "\\ud800", "\\udc00", "\\udbff\\udfff", "\\ud800\\u0041", "\\udfff\\ud800", "\\uD800", "\\u", "\\u12", "\\uzzzz",
            "\\", "\\\\", "\\\"", "\"", "'", "\\x", "\\u0000", "\u0000", "\n", " ",
            "{", "}", "[", "]", ":", ",", "{}", "[]", "null", "true", "-", "-0", "0.", "1e", "01",
            "1e400", "-1e400", "99999999999999999999999999999", "-9223372036854775809", "1.7976931348623157e309",
            new string('[', 70), new string('{', 70), string.Concat(Enumerable.Repeat("{\"a\":", 70)),
            ",\"type\":\"join\"", ",\"room\":\"\\ud800\"", ",\"id\":\"\\udc00\"", ",\"data\":\"\\ud800\"",
            ",\"\\ud800\":1", ",\"since\":1e400", ",\"limit\":-1", ",\"epoch\":\"\\udbff\"", ",\"to\":\"\\ud800\"",
            ",\"msgId\":\"\\ud800\"", ",\"type\":\"\\ud800\"",
        }.Select(Encoding.UTF8.GetBytes),
        [0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xC0, 0x80],
    ];

    private static readonly HashSet<string> KnownCodes = [ErrorCodes.BadRequest, ErrorCodes.UnknownType, ErrorCodes.TooLarge];

    [Fact]
    public void TryParse_MutatedFramesOfEveryType_FrameOrKnownErrorAndNeverThrows()
    {
        var parser = new FrameParser(maxNameLength: 200);
        var random = new Random(Seed);
        var seeds = ValidFrames.Select(Encoding.UTF8.GetBytes).ToArray();
        int accepted = 0, refused = 0, loneSurrogates = 0;
        foreach (var seed in seeds)
        {
            Assert.True(parser.TryParse(seed, out _, out var error), $"The seed {Encoding.UTF8.GetString(seed)} is refused: {error.Message}");
        }

        for (var n = 0; n < Frames; n++)
        {
            var input = Mutate(seeds[random.Next(seeds.Length)], random);
            bool parsed;
            ClientFrame frame;
            FrameError error;
            try
            {
                parsed = parser.TryParse(input, out frame, out error);
            }
            catch (Exception ex)
            {
                Assert.Fail($"Frame {n} threw {ex.GetType().Name}: {ex.Message}\ninput (base64): {Convert.ToBase64String(input)}");
                return;
            }

            if (parsed)
            {
                accepted++;
                AssertDecodable(frame, input, n);
            }
            else
            {
                refused++;
                Assert.True(KnownCodes.Contains(error.Code), $"Frame {n}: unknown code {error.Code}; input (base64): {Convert.ToBase64String(input)}");
                Assert.False(string.IsNullOrWhiteSpace(error.Message), $"Frame {n}: no sentence for {error.Code}.");
                if (error.Id.Length > 0)
                {
                    AssertCleanJson(error.Id, "the error's id", input, n);
                }

                if (error.Message.Contains("lone surrogate", StringComparison.Ordinal))
                {
                    loneSurrogates++;
                }
            }
        }

        // Each kind of answer happened often enough for the run to mean something.
        Assert.True(accepted > Frames / 20, $"Only {accepted} mutated frames were accepted.");
        Assert.True(refused > Frames / 4, $"Only {refused} mutated frames were refused.");
        Assert.True(loneSurrogates > Frames / 200, $"Only {loneSurrogates} lone surrogates were refused.");
    }

    /// <summary>1 to 3 mutations: byte flips, truncation, insertions, duplicated or dropped slices.</summary>
    private static byte[] Mutate(byte[] seed, Random random)
    {
        var bytes = new List<byte>(seed);
        var mutations = random.Next(1, 4);
        for (var m = 0; m < mutations; m++)
        {
            var at = random.Next(bytes.Count + 1);
            switch (random.Next(6))
            {
                case 0 when bytes.Count > 0:
                    bytes[Math.Min(at, bytes.Count - 1)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes[Math.Min(at, bytes.Count - 1)] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 3 when bytes.Count > 0:
                    var length = random.Next(1, Math.Min(16, bytes.Count - Math.Min(at, bytes.Count - 1)) + 1);
                    var start = Math.Min(at, bytes.Count - 1);
                    if (random.Next(2) == 0)
                    {
                        bytes.InsertRange(start, bytes.GetRange(start, length));
                    }
                    else
                    {
                        bytes.RemoveRange(start, length);
                    }

                    break;
                default:
                    bytes.InsertRange(InsideAString(bytes, at, random), Insertions[random.Next(Insertions.Length)]);
                    break;
            }
        }

        return [.. bytes];
    }

    /// <summary>Half the insertions go just after a quote, so that escapes land inside strings.</summary>
    private static int InsideAString(List<byte> bytes, int at, Random random)
    {
        if (random.Next(2) == 0)
        {
            return at;
        }

        var quote = bytes.IndexOf((byte)'"', Math.Min(at, bytes.Count));
        return quote < 0 ? at : quote + 1;
    }

    /// <summary>An accepted frame holds nothing a client could not decode: its data and id are JSON whose strings are valid UTF-16.</summary>
    private static void AssertDecodable(ClientFrame frame, byte[] input, int n)
    {
        if (frame.Data is { } data)
        {
            AssertCleanJson(data, "data", input, n);
        }

        if (frame.Id.Length > 0)
        {
            AssertCleanJson(frame.Id, "id", input, n);
        }

        foreach (var name in new[] { frame.Room, frame.To, frame.MsgId, frame.Epoch })
        {
            if (name is not null)
            {
                Assert.False(HasLoneSurrogate(name), $"Frame {n}: a decoded name holds a lone surrogate; input (base64): {Convert.ToBase64String(input)}");
            }
        }
    }

    private static void AssertCleanJson(byte[] json, string what, byte[] input, int n)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            Walk(document.RootElement);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            Assert.Fail($"Frame {n}: {what} cannot be decoded ({ex.Message}); input (base64): {Convert.ToBase64String(input)}");
        }

        static void Walk(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        Walk(property.Value);
                    }

                    break;
                default:
                    break;
            }
        }
    }

    private static bool HasLoneSurrogate(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }
}
