using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using Broker.Transport;
using Microsoft.AspNetCore.Connections;

namespace Broker.Frontend.Tests.Transport;

/// <summary>
/// Seeded fuzzing of the receive path (<see cref="PipeWebSocket"/> on in-memory pipes, the codec
/// beneath it): sequences of client frames — every opcode, fragments, control frames, UTF-8
/// and not — mutated (bits flipped, bytes replaced, inserted, removed, the stream cut short)
/// and read the way the connection handler reads them. The only failures that may come out
/// are the defined ones: <see cref="WebSocketException"/> (1002, 1007, 1008, a connection that
/// ended) and <see cref="MessageTooBigException"/>.
/// </summary>
public sealed class ReceivePathFuzzTests
{
    private const int MaxMessageBytes = 1024;
    private const int Seed = 13_6455;

    [Fact]
    public async Task Receive_100000MutatedFrames_OnlyDefinedFailures()
    {
        var random = new Random(Seed);
        var frames = 0;
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var round = 0; frames < 100_000; round++)
        {
            var (bytes, count) = MutatedFrames(random);
            frames += count;
            string outcome;
            try
            {
                outcome = await ReceiveAllAsync(bytes);
            }
            catch (Exception ex) when (ex is WebSocketException or MessageTooBigException)
            {
                outcome = ex.GetType().Name;
            }
            catch (Exception ex)
            {
                Assert.Fail($"Round {round} (seed {Seed}): {ex.GetType().Name} escaped the receive path for {Convert.ToHexString(bytes)}: {ex}");
                throw;
            }

            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        // The generator reaches the paths that matter: clean ends, closes and both kinds of failure.
        Assert.True(outcomes.Count >= 3, $"Outcomes: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}");
        Assert.Contains(nameof(WebSocketException), outcomes.Keys);
        Assert.Contains(nameof(MessageTooBigException), outcomes.Keys);
    }

    /// <summary>Feeds the bytes to a socket and reads messages until it fails or the client closes; the way it ended.</summary>
    private static async Task<string> ReceiveAllAsync(byte[] bytes)
    {
        var input = new Pipe();
        var output = new Pipe();
        var connection = new DefaultConnectionContext("fuzz", new DuplexPipe(input.Reader, output.Writer), new DuplexPipe(output.Reader, input.Writer));
        using var socket = new PipeWebSocket(connection, MaxMessageBytes, TimeSpan.Zero, TimeSpan.Zero);
        socket.LimitControlFrames(new Budget(3), maxDroppedInARow: 3);

        // Written in two pieces, so that headers and payloads are also cut by a read boundary.
        var cut = bytes.Length / 2;
        await input.Writer.WriteAsync(bytes.AsMemory(0, cut));
        await input.Writer.WriteAsync(bytes.AsMemory(cut));
        await input.Writer.CompleteAsync();

        var buffer = new byte[MaxMessageBytes + 1];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var result = await socket.ReceiveAsync(Memory<byte>.Empty, timeout.Token);
            var count = 0;
            while (!result.EndOfMessage)
            {
                result = await socket.ReceiveAsync(buffer.AsMemory(count % MaxMessageBytes), timeout.Token);
                count += result.Count;
            }

            if (result.MessageType == WebSocketMessageType.Close)
            {
                return "Close";
            }
        }
    }

    /// <summary>One to six client frames, then zero to four mutations of their bytes; and how many frames.</summary>
    private static (byte[] Bytes, int Frames) MutatedFrames(Random random)
    {
        var stream = new List<byte>();
        var frames = random.Next(1, 7);
        for (var f = 0; f < frames; f++)
        {
            var opcode = random.Next(10) switch
            {
                0 or 1 or 2 => 0x1,
                3 => 0x2,
                4 or 5 => 0x0,
                6 => 0x9,
                7 => 0xA,
                8 => 0x8,
                _ => random.Next(16),
            };
            var payload = Payload(random, opcode);
            stream.AddRange(Frame(random, opcode, fin: random.Next(3) != 0, payload));
        }

        var bytes = stream.ToList();
        var mutations = random.Next(5);
        for (var m = 0; m < mutations && bytes.Count > 0; m++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.Insert(at, (byte)random.Next(256));
                    break;
                case 3:
                    bytes.RemoveAt(at);
                    break;
                default:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
            }
        }

        return ([.. bytes], frames);
    }

    private static byte[] Payload(Random random, int opcode)
    {
        if (opcode == 0x8)
        {
            // A close: empty, a code, or a code and a reason (valid or not).
            return random.Next(4) switch
            {
                0 => [],
                1 => [0x03, 0xE8],
                2 => [.. new byte[] { 0x03, 0xE9 }, .. "bye"u8],
                _ => [(byte)random.Next(256), (byte)random.Next(256), 0xC3],
            };
        }

        var length = random.Next(8) switch
        {
            0 => 0,
            1 => random.Next(126, 300),
            2 => random.Next(MaxMessageBytes - 10, MaxMessageBytes + 10),
            _ => random.Next(1, 40),
        };
        if (random.Next(2) == 0)
        {
            var text = new StringBuilder();
            string[] pieces = ["a", "é", "€", "😀", "{\"type\":\"ping\"}", " "];
            while (Encoding.UTF8.GetByteCount(text.ToString()) < length)
            {
                text.Append(pieces[random.Next(pieces.Length)]);
            }

            return Encoding.UTF8.GetBytes(text.ToString());
        }

        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A masked client frame; the length sometimes in a longer form than needed, sometimes unmasked.</summary>
    private static byte[] Frame(Random random, int opcode, bool fin, byte[] payload)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | opcode | (random.Next(20) == 0 ? 0x40 : 0)) };
        var masked = random.Next(30) != 0;
        var maskBit = masked ? 0x80 : 0;
        var form = payload.Length <= 125 && random.Next(5) != 0 ? 0 : payload.Length <= ushort.MaxValue && random.Next(3) != 0 ? 1 : 2;
        switch (form)
        {
            case 0:
                frame.Add((byte)(maskBit | payload.Length));
                break;
            case 1:
                frame.Add((byte)(maskBit | 126));
                frame.Add((byte)(payload.Length >> 8));
                frame.Add((byte)payload.Length);
                break;
            default:
                frame.Add((byte)(maskBit | 127));
                for (var shift = 56; shift >= 0; shift -= 8)
                {
                    frame.Add((byte)((long)payload.Length >> shift));
                }

                break;
        }

        var mask = new byte[4];
        random.NextBytes(mask);
        if (masked)
        {
            frame.AddRange(mask);
        }

        for (var i = 0; i < payload.Length; i++)
        {
            frame.Add(masked ? (byte)(payload[i] ^ mask[i & 3]) : payload[i]);
        }

        return [.. frame];
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>A frame budget of <c>units</c> frames, never refilled.</summary>
    private sealed class Budget(int units) : IControlFrameBudget
    {
        private int _left = units;

        public bool TryTake() => _left-- > 0;
    }
}
