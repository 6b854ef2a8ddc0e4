using System.Buffers;
using System.Buffers.Binary;
using Broker.Transport;

namespace Broker.Frontend.Tests.Transport;

/// <summary>The RFC 6455 frame codec as a unit: header parse (every length form, every rule), header write, masking.</summary>
public sealed class WebSocketFrameCodecTests
{
    private static readonly byte[] MaskKey = [0x37, 0xFA, 0x21, 0x3D];

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 2)]
    [InlineData(125, 2)]
    [InlineData(126, 4)]
    [InlineData(65535, 4)]
    [InlineData(65536, 10)]
    [InlineData(long.MaxValue, 10)]
    public void TryReadClientHeader_EveryLengthForm_ParsedWithMask(long length, int lengthBytes)
    {
        var header = ClientHeader(0x81, length);

        var status = WebSocketFrameCodec.TryReadClientHeader(header, out var parsed, out var headerLength, out var violation);

        Assert.Equal(FrameHeaderStatus.Parsed, status);
        Assert.Null(violation);
        Assert.Equal(lengthBytes + 4, headerLength);
        Assert.Equal(WebSocketOpcode.Text, parsed.Opcode);
        Assert.True(parsed.Fin);
        Assert.Equal(length, parsed.Length);
        Assert.Equal(BitConverter.ToUInt32(MaskKey), parsed.Mask);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(300)]
    [InlineData(70000)]
    public void TryReadClientHeader_EveryShorterPrefix_NeedMore(long length)
    {
        var header = ClientHeader(0x82, length);

        for (var cut = 0; cut < header.Length; cut++)
        {
            Assert.Equal(FrameHeaderStatus.NeedMore, WebSocketFrameCodec.TryReadClientHeader(header.AsSpan(0, cut), out _, out _, out _));
        }
    }

    [Fact]
    public void TryReadClientHeader_SplitAcrossSegments_SameAsContiguous()
    {
        var header = ClientHeader(0x01, 70000);
        for (var split = 1; split < header.Length; split++)
        {
            var sequence = Segments(header[..split], header[split..]);

            Assert.Equal(FrameHeaderStatus.Parsed, WebSocketFrameCodec.TryReadClientHeader(sequence, out var parsed, out var length, out _));
            Assert.Equal(70000, parsed.Length);
            Assert.False(parsed.Fin);
            Assert.Equal(WebSocketOpcode.Text, parsed.Opcode);
            Assert.Equal(header.Length, length);
        }
    }

    [Theory]
    [InlineData(0xC1, "Reserved bits")]
    [InlineData(0xA1, "Reserved bits")]
    [InlineData(0x91, "Reserved bits")]
    [InlineData(0x83, "Unknown opcode 3")]
    [InlineData(0x87, "Unknown opcode 7")]
    [InlineData(0x8B, "Unknown opcode 11")]
    [InlineData(0x8F, "Unknown opcode 15")]
    [InlineData(0x09, "fragmented")]
    [InlineData(0x08, "fragmented")]
    public void TryReadClientHeader_BrokenFirstByte_InvalidFromItAlone(byte first, string reason)
    {
        // The first byte shows the violation: it is reported before the rest arrives.
        var status = WebSocketFrameCodec.TryReadClientHeader([first], out _, out _, out var violation);

        Assert.Equal(FrameHeaderStatus.Invalid, status);
        Assert.Contains(reason, violation, StringComparison.Ordinal);
    }

    [Fact]
    public void TryReadClientHeader_Unmasked_Invalid()
    {
        Assert.Equal(FrameHeaderStatus.Invalid, WebSocketFrameCodec.TryReadClientHeader([0x81, 0x05], out _, out _, out var violation));
        Assert.Contains("masked", violation, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0x89)]
    [InlineData(0x8A)]
    [InlineData(0x88)]
    public void TryReadClientHeader_ControlFrameOver125Bytes_Invalid(byte first)
    {
        Assert.Equal(FrameHeaderStatus.Invalid, WebSocketFrameCodec.TryReadClientHeader(ClientHeader(first, 126), out _, out _, out var violation));
        Assert.Contains("125", violation, StringComparison.Ordinal);
        Assert.Equal(FrameHeaderStatus.Parsed, WebSocketFrameCodec.TryReadClientHeader(ClientHeader(first, 125), out var ok, out _, out _));
        Assert.True(ok.IsControl);
    }

    [Fact]
    public void TryReadClientHeader_64BitLengthWithMostSignificantBitSet_Invalid()
    {
        byte[] header = [0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, .. MaskKey];

        Assert.Equal(FrameHeaderStatus.Invalid, WebSocketFrameCodec.TryReadClientHeader(header, out _, out _, out _));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(125L)]
    [InlineData(126L)]
    [InlineData(65535L)]
    [InlineData(65536L)]
    [InlineData(1L << 40)]
    public void WriteServerHeader_ShortestForm_ReadsBackUnmasked(long length)
    {
        Span<byte> header = stackalloc byte[WebSocketFrameCodec.MaxServerHeaderBytes];

        var written = WebSocketFrameCodec.WriteServerHeader(header, WebSocketOpcode.Binary, fin: false, length);

        Assert.Equal(WebSocketFrameCodec.ServerHeaderLength(length), written);
        Assert.Equal(0x02, header[0]);
        Assert.Equal(0, header[1] & 0x80);
        var announced = (header[1] & 0x7F) switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(header[2..]),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(header[2..]),
            var small => small,
        };
        Assert.Equal(length, announced);
    }

    [Fact]
    public void Mask_PieceByPieceFromAnyOffset_SameAsWhole()
    {
        var random = new Random(6455);
        var mask = BitConverter.ToUInt32(MaskKey);
        for (var round = 0; round < 200; round++)
        {
            var data = new byte[random.Next(0, 100)];
            random.NextBytes(data);
            var whole = data.ToArray();
            for (var i = 0; i < whole.Length; i++)
            {
                whole[i] ^= MaskKey[i % 4];
            }

            var pieces = data.ToArray();
            var offset = 0;
            var at = 0;
            while (at < pieces.Length)
            {
                var take = Math.Min(random.Next(1, 20), pieces.Length - at);
                offset = WebSocketFrameCodec.Mask(pieces.AsSpan(at, take), mask, offset);
                at += take;
            }

            Assert.Equal(whole, pieces);
            Assert.Equal(data.Length & 3, offset);
        }
    }

    [Theory]
    [InlineData(1000, true)]
    [InlineData(1003, true)]
    [InlineData(1004, false)]
    [InlineData(1005, false)]
    [InlineData(1006, false)]
    [InlineData(1007, true)]
    [InlineData(1014, true)]
    [InlineData(1015, false)]
    [InlineData(2999, false)]
    [InlineData(3000, true)]
    [InlineData(4999, true)]
    [InlineData(5000, false)]
    [InlineData(999, false)]
    public void IsValidCloseCode_Rfc6455Ranges(int code, bool valid) =>
        Assert.Equal(valid, WebSocketFrameCodec.IsValidCloseCode((ushort)code));

    /// <summary>A masked client header with the shortest length form.</summary>
    internal static byte[] ClientHeader(byte first, long length)
    {
        var bytes = new List<byte> { first };
        if (length <= 125)
        {
            bytes.Add((byte)(0x80 | length));
        }
        else if (length <= ushort.MaxValue)
        {
            bytes.Add(0x80 | 126);
            bytes.Add((byte)(length >> 8));
            bytes.Add((byte)length);
        }
        else
        {
            bytes.Add(0x80 | 127);
            for (var shift = 56; shift >= 0; shift -= 8)
            {
                bytes.Add((byte)(length >> shift));
            }
        }

        bytes.AddRange(MaskKey);
        return [.. bytes];
    }

    /// <summary>A sequence of the given segments, in order.</summary>
    internal static ReadOnlySequence<byte> Segments(params byte[][] parts)
    {
        Segment? first = null, last = null;
        foreach (var part in parts)
        {
            var segment = new Segment(part, last?.RunningIndex + last?.Memory.Length ?? 0);
            first ??= segment;
            if (last is not null)
            {
                last.SetNext(segment);
            }

            last = segment;
        }

        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}
