using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Broker.Transport;

/// <summary>
/// Checks a text message's UTF-8 as its payload arrives, piece by piece (RFC 6455 §8.1: a text
/// message that is not valid UTF-8 fails the connection with 1007). A sequence cut by a read or
/// a fragment boundary is carried to the next piece (at most 3 bytes, held in the struct
/// itself: no buffer); a message that ends inside a sequence is invalid. Invalid bytes are
/// reported as soon as they arrive, not only at the end of the message.
/// </summary>
public struct Utf8Validator
{
    // Up to 3 bytes of an incomplete sequence, low byte first, and how many there are.
    private uint _pending;
    private byte _pendingCount;

    /// <summary>True while the bytes seen so far end inside a multi-byte sequence.</summary>
    public readonly bool InSequence => _pendingCount != 0;

    /// <summary>Forgets any carried bytes (a new message).</summary>
    public void Reset()
    {
        _pending = 0;
        _pendingCount = 0;
    }

    /// <summary>
    /// Takes the next piece of the message; false as soon as it can no longer be valid UTF-8.
    /// With <paramref name="endOfMessage"/>, also false when the message ends inside a sequence.
    /// </summary>
    public bool Append(ReadOnlySpan<byte> piece, bool endOfMessage)
    {
        if (_pendingCount != 0 && !piece.IsEmpty)
        {
            // Complete the carried sequence with the piece's first bytes.
            Span<byte> joined = stackalloc byte[4];
            var carried = _pendingCount;
            for (var i = 0; i < carried; i++)
            {
                joined[i] = (byte)(_pending >> (8 * i));
            }

            var taken = Math.Min(4 - carried, piece.Length);
            piece[..taken].CopyTo(joined[carried..]);
            switch (Rune.DecodeFromUtf8(joined[..(carried + taken)], out _, out var consumed))
            {
                case OperationStatus.Done:
                    piece = piece[(consumed - carried)..];
                    Reset();
                    break;
                case OperationStatus.NeedMoreData:
                    // Still incomplete: the whole piece was the sequence's next bytes.
                    Carry(joined[..(carried + taken)]);
                    return !endOfMessage;
                default:
                    return false;
            }
        }

        // Hold back a trailing sequence that the piece cuts short (only one can be: its lead
        // byte is among the last 3), then check the rest in one go.
        var complete = piece.Length - IncompleteTailLength(piece);
        if (!Utf8.IsValid(piece[..complete]))
        {
            return false;
        }

        var tail = piece[complete..];
        if (tail.IsEmpty)
        {
            return !endOfMessage || _pendingCount == 0;
        }

        // A tail that is already wrong (an overlong or surrogate lead, say) fails now.
        if (Rune.DecodeFromUtf8(tail, out _, out _) != OperationStatus.NeedMoreData)
        {
            return false;
        }

        Carry(tail);
        return !endOfMessage;
    }

    private void Carry(ReadOnlySpan<byte> bytes)
    {
        uint pending = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            pending |= (uint)bytes[i] << (8 * i);
        }

        _pending = pending;
        _pendingCount = (byte)bytes.Length;
    }

    /// <summary>The length of a multi-byte sequence at the end of <paramref name="piece"/> that needs more bytes than follow its lead; 0 if none.</summary>
    private static int IncompleteTailLength(ReadOnlySpan<byte> piece)
    {
        var stop = Math.Max(0, piece.Length - 3);
        for (var i = piece.Length - 1; i >= stop; i--)
        {
            var b = piece[i];
            if ((b & 0xC0) == 0x80)
            {
                // A continuation byte: its lead is further back.
                continue;
            }

            var needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            var present = piece.Length - i;
            return present < needed ? present : 0;
        }

        // Only continuation bytes in the last three: whatever they belong to is invalid or
        // complete, and IsValid decides.
        return 0;
    }
}
