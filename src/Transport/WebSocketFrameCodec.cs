using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Broker.Transport;

/// <summary>RFC 6455 opcodes (§5.2); the others are reserved.</summary>
public enum WebSocketOpcode : byte
{
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// <summary>One frame header as a client sent it: the payload's length and the mask that covers it.</summary>
/// <param name="Mask">The masking key as read off the wire (its first byte is the uint's low byte).</param>
public readonly record struct FrameHeader(WebSocketOpcode Opcode, bool Fin, long Length, uint Mask)
{
    public bool IsControl => Opcode >= WebSocketOpcode.Close;
}

/// <summary>What <see cref="WebSocketFrameCodec.TryReadClientHeader"/> made of the bytes so far.</summary>
public enum FrameHeaderStatus
{
    /// <summary>Not all of the header has arrived; nothing is wrong yet.</summary>
    NeedMore,

    /// <summary>A valid client frame header.</summary>
    Parsed,

    /// <summary>A protocol violation: the connection fails with 1002.</summary>
    Invalid,
}

/// <summary>
/// The RFC 6455 frame codec, pure: reading a client's frame header (with every rule a server
/// must check on it), writing a server's (never masked), and unmasking. Holds no state; the
/// receive state machine (fragments, message size, UTF-8) is <see cref="PipeWebSocket"/>'s.
/// </summary>
public static class WebSocketFrameCodec
{
    /// <summary>The largest header: 2 bytes, a 64-bit length and a 4-byte mask.</summary>
    public const int MaxHeaderBytes = 14;

    /// <summary>The largest header a server writes (no mask).</summary>
    public const int MaxServerHeaderBytes = 10;

    /// <summary>The largest payload of a control frame, and of the 7-bit length form.</summary>
    public const int MaxControlPayload = 125;

    private const byte FinBit = 0x80;

    /// <summary>
    /// Reads a client frame header off the front of <paramref name="buffer"/>: <see cref="FrameHeaderStatus.Parsed"/>
    /// with the header and its length in bytes, <see cref="FrameHeaderStatus.NeedMore"/>, or
    /// <see cref="FrameHeaderStatus.Invalid"/> with a sentence saying which rule was broken.
    /// A violation is reported as soon as the bytes that show it have arrived.
    /// </summary>
    public static FrameHeaderStatus TryReadClientHeader(ReadOnlySequence<byte> buffer, out FrameHeader header, out int headerLength, out string? violation)
    {
        if (buffer.FirstSpan.Length >= MaxHeaderBytes || buffer.IsSingleSegment)
        {
            return TryReadClientHeader(buffer.FirstSpan, out header, out headerLength, out violation);
        }

        Span<byte> bytes = stackalloc byte[MaxHeaderBytes];
        var copied = (int)Math.Min(buffer.Length, MaxHeaderBytes);
        buffer.Slice(0, copied).CopyTo(bytes);
        return TryReadClientHeader(bytes[..copied], out header, out headerLength, out violation);
    }

    /// <inheritdoc cref="TryReadClientHeader(ReadOnlySequence{byte}, out FrameHeader, out int, out string?)"/>
    public static FrameHeaderStatus TryReadClientHeader(ReadOnlySpan<byte> bytes, out FrameHeader header, out int headerLength, out string? violation)
    {
        header = default;
        headerLength = 0;
        violation = null;
        if (bytes.IsEmpty)
        {
            return FrameHeaderStatus.NeedMore;
        }

        var b0 = bytes[0];
        if ((b0 & 0x70) != 0)
        {
            violation = "Reserved bits are set, and no extension was negotiated.";
            return FrameHeaderStatus.Invalid;
        }

        var opcode = (WebSocketOpcode)(b0 & 0x0F);
        if (opcode is not (WebSocketOpcode.Continuation or WebSocketOpcode.Text or WebSocketOpcode.Binary or WebSocketOpcode.Close or WebSocketOpcode.Ping or WebSocketOpcode.Pong))
        {
            violation = $"Unknown opcode {(int)opcode}.";
            return FrameHeaderStatus.Invalid;
        }

        var fin = (b0 & FinBit) != 0;
        var isControl = opcode >= WebSocketOpcode.Close;
        if (isControl && !fin)
        {
            violation = "Control frames must not be fragmented.";
            return FrameHeaderStatus.Invalid;
        }

        if (bytes.Length < 2)
        {
            return FrameHeaderStatus.NeedMore;
        }

        var b1 = bytes[1];
        if ((b1 & 0x80) == 0)
        {
            violation = "Client frames must be masked.";
            return FrameHeaderStatus.Invalid;
        }

        long length = b1 & 0x7F;
        if (isControl && length > MaxControlPayload)
        {
            violation = "Control frames carry at most 125 bytes.";
            return FrameHeaderStatus.Invalid;
        }

        var offset = 2;
        if (length == 126)
        {
            if (bytes.Length < 4)
            {
                return FrameHeaderStatus.NeedMore;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]);
            offset = 4;
        }
        else if (length == 127)
        {
            if (bytes.Length < 10)
            {
                return FrameHeaderStatus.NeedMore;
            }

            var wide = BinaryPrimitives.ReadUInt64BigEndian(bytes[2..]);
            if (wide > long.MaxValue)
            {
                violation = "The payload length's most significant bit is set.";
                return FrameHeaderStatus.Invalid;
            }

            length = (long)wide;
            offset = 10;
        }

        if (bytes.Length < offset + 4)
        {
            return FrameHeaderStatus.NeedMore;
        }

        header = new FrameHeader(opcode, fin, length, MemoryMarshal.Read<uint>(bytes.Slice(offset, 4)));
        headerLength = offset + 4;
        return FrameHeaderStatus.Parsed;
    }

    /// <summary>The number of header bytes a server frame with this payload length has.</summary>
    public static int ServerHeaderLength(long payloadLength) =>
        payloadLength <= MaxControlPayload ? 2 : payloadLength <= ushort.MaxValue ? 4 : 10;

    /// <summary>
    /// Writes a server frame header (unmasked, the shortest length form) into <paramref name="destination"/>
    /// (at least <see cref="ServerHeaderLength"/> bytes); returns its length.
    /// </summary>
    public static int WriteServerHeader(Span<byte> destination, WebSocketOpcode opcode, bool fin, long payloadLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        destination[0] = (byte)((fin ? FinBit : 0) | (byte)opcode);
        if (payloadLength <= MaxControlPayload)
        {
            destination[1] = (byte)payloadLength;
            return 2;
        }

        if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            return 4;
        }

        destination[1] = 127;
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
        return 10;
    }

    /// <summary>
    /// XORs the mask into <paramref name="data"/> in place (masking and unmasking are the same),
    /// starting at mask byte <paramref name="offset"/> (0–3); returns the offset for the bytes
    /// that follow, so that a payload can be unmasked piece by piece.
    /// </summary>
    public static int Mask(Span<byte> data, uint mask, int offset)
    {
        if (data.IsEmpty)
        {
            return offset;
        }

        // Rotate the mask so that its first byte applies to data[0] (little-endian: byte k of
        // the uint is mask byte k), then XOR eight bytes at a time.
        var rotated = offset == 0 ? mask : (mask >> (offset * 8)) | (mask << (32 - (offset * 8)));
        var wide = ((ulong)rotated << 32) | rotated;
        var longs = MemoryMarshal.Cast<byte, ulong>(data);
        for (var k = 0; k < longs.Length; k++)
        {
            longs[k] ^= wide;
        }

        Span<byte> maskBytes = stackalloc byte[4];
        MemoryMarshal.Write(maskBytes, in rotated);
        for (var i = longs.Length * 8; i < data.Length; i++)
        {
            data[i] ^= maskBytes[i & 3];
        }

        return (offset + data.Length) & 3;
    }

    /// <summary>Close codes a peer may send (RFC 6455 §7.4): 1000–1003, 1007–1014, 3000–4999.</summary>
    public static bool IsValidCloseCode(ushort code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1014) or (>= 3000 and <= 4999);
}
