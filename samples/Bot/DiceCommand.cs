using System.Text.Json;

namespace Broker.Samples.Bot;

/// <summary>
/// What counts as a roll: a message whose data is the JSON string <c>"/roll"</c>, or an object
/// whose <c>text</c> is (<c>{"text":"/roll"}</c>, what the chat page sends). Case and surrounding
/// spaces do not matter; anything else (<c>"/roll 20"</c>, <c>{"cmd":"/roll"}</c>) is not a roll.
/// </summary>
public static class DiceCommand
{
    public const string Roll = "/roll";

    // A roll is a few bytes: longer data (a message may hold up to 1 MiB) is not parsed at all.
    private const int MaxBytes = 256;

    public static bool IsRoll(byte[]? data)
    {
        if (data is null || data.Length > MaxBytes)
        {
            return false;
        }

        try
        {
            using var json = JsonDocument.Parse(data);
            var text = json.RootElement switch
            {
                { ValueKind: JsonValueKind.String } value => value.GetString(),
                { ValueKind: JsonValueKind.Object } value when value.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String => t.GetString(),
                _ => null,
            };
            return string.Equals(text?.Trim(), Roll, StringComparison.OrdinalIgnoreCase);
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
