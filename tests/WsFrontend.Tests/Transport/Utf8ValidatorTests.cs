using System.Text.Unicode;
using Broker.Transport;

namespace Broker.Frontend.Tests.Transport;

/// <summary>The incremental UTF-8 check: however a message is cut into pieces, it agrees with a check of the whole.</summary>
public sealed class Utf8ValidatorTests
{
    public static TheoryData<string, byte[]> Messages => new()
    {
        { "ASCII", "{\"type\":\"ping\"}"u8.ToArray() },
        { "2-, 3- and 4-byte sequences", "é€😀 ü"u8.ToArray() },
        { "empty", [] },
        { "a lone continuation byte", [0x61, 0x80, 0x61] },
        { "an overlong 2-byte form", [0xC0, 0xAF] },
        { "an overlong 3-byte form", [0xE0, 0x80, 0xAF] },
        { "a surrogate (ED A0 80)", [0xED, 0xA0, 0x80] },
        { "past U+10FFFF (F4 90 80 80)", [0xF4, 0x90, 0x80, 0x80] },
        { "F5 lead", [0xF5, 0x80, 0x80, 0x80] },
        { "FF", [0x61, 0xFF] },
        { "ends inside a 2-byte sequence", [0x61, 0xC3] },
        { "ends inside a 4-byte sequence", [0xF0, 0x9F, 0x98] },
        { "a 3-byte sequence cut by ASCII", [0xE2, 0x82, 0x28] },
        { "the largest code point", [0xF4, 0x8F, 0xBF, 0xBF] },
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public void Append_EverySplitIntoTwoOrThree_AgreesWithTheWhole(string what, byte[] message)
    {
        var expected = Utf8.IsValid(message);
        for (var a = 0; a <= message.Length; a++)
        {
            for (var b = a; b <= message.Length; b++)
            {
                var validator = default(Utf8Validator);
                var valid = validator.Append(message.AsSpan(0, a), endOfMessage: false)
                    && validator.Append(message.AsSpan(a, b - a), endOfMessage: false)
                    && validator.Append(message.AsSpan(b), endOfMessage: true);
                Assert.True(expected == valid, $"{what}: cut at {a} and {b}, got {valid}, the whole is {expected}.");
            }
        }
    }

    [Fact]
    public void Append_RandomMessagesInRandomPieces_AgreesWithTheWhole()
    {
        var random = new Random(1007);
        byte[] alphabet = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x82, 0x9F, 0xA0, 0x90];
        for (var round = 0; round < 20_000; round++)
        {
            var message = new byte[random.Next(0, 12)];
            for (var i = 0; i < message.Length; i++)
            {
                message[i] = alphabet[random.Next(alphabet.Length)];
            }

            var validator = default(Utf8Validator);
            var valid = true;
            var at = 0;
            do
            {
                var take = Math.Min(random.Next(0, 4), message.Length - at);
                valid = validator.Append(message.AsSpan(at, take), endOfMessage: at + take == message.Length);
                at += take;
            }
            while (valid && at < message.Length);

            Assert.True(Utf8.IsValid(message) == valid, $"{Convert.ToHexString(message)}: got {valid}.");
        }
    }

    [Fact]
    public void Append_InvalidByte_FailsBeforeTheMessageEnds()
    {
        var validator = default(Utf8Validator);

        Assert.False(validator.Append([0x61, 0xE0, 0x80], endOfMessage: false));
    }

    [Fact]
    public void Reset_ForgetsACarriedSequence()
    {
        var validator = default(Utf8Validator);
        Assert.True(validator.Append([0xE2, 0x82], endOfMessage: false));
        Assert.True(validator.InSequence);

        validator.Reset();

        Assert.False(validator.InSequence);
        Assert.True(validator.Append("a"u8, endOfMessage: true));
    }
}
