using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;

namespace Broker.Bench.Core;

/// <summary>Receives whole text frames from a socket and hands them to a sink, one at a time.</summary>
public interface IFrameSink
{
    /// <param name="frame">The frame's bytes, valid during the call only.</param>
    /// <param name="receivedAt">Stopwatch timestamp taken when the frame was complete.</param>
    void OnFrame(ReadOnlySpan<byte> frame, long receivedAt);
}

/// <summary>How a connection ended: the close code the server sent, or the error, or our own close.</summary>
public readonly record struct CloseOutcome(int? Code, string? Error)
{
    /// <summary>"1013", "1000", "error: …" — the key under which closes are counted.</summary>
    public string Key => Code is { } c ? c.ToString(System.Globalization.CultureInfo.InvariantCulture) : "error: " + Error;
}

public static class FrameLoop
{
    public static async Task<CloseOutcome> RunAsync(WebSocket socket, IFrameSink sink, int initialBuffer, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(initialBuffer);
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count == buffer.Length)
                    {
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, count).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    result = await socket.ReceiveAsync(buffer.AsMemory(count), ct);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        var code = (int?)socket.CloseStatus;
                        try
                        {
                            if (socket.State == WebSocketState.CloseReceived)
                            {
                                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
                            }
                        }
                        catch (Exception ex) when (ex is WebSocketException or IOException or TimeoutException or ObjectDisposedException)
                        {
                            // The peer is gone already.
                        }

                        return new CloseOutcome(code ?? 1005, null);
                    }

                    count += result.Count;
                }
                while (!result.EndOfMessage);

                sink.OnFrame(buffer.AsSpan(0, count), Stopwatch.GetTimestamp());
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new CloseOutcome(null, "cancelled");
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            return new CloseOutcome(null, Describe(ex));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A short, stable description of a connection failure, to count failures by kind.</summary>
    public static string Describe(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is System.Net.Sockets.SocketException se)
            {
                return se.SocketErrorCode.ToString();
            }
        }

        return ex switch
        {
            WebSocketException we when we.Message.Contains("refused the upgrade", StringComparison.Ordinal) => we.Message[(we.Message.IndexOf(':', StringComparison.Ordinal) + 2)..],
            WebSocketException we => "websocket: " + we.WebSocketErrorCode,
            TimeoutException => "timeout",
            _ => ex.GetType().Name,
        };
    }

    /// <summary>Sends our close frame (the server answers with its own, ending the frame loop); aborts if it takes too long.</summary>
    public static async Task CloseAsync(WebSocket socket, Task loop, TimeSpan timeout)
    {
        try
        {
            if (socket.State == WebSocketState.Open)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bench done", CancellationToken.None).WaitAsync(timeout);
            }

            await loop.WaitAsync(timeout);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            // Aborted below.
        }
        finally
        {
            socket.Abort();
            socket.Dispose();
        }
    }
}
