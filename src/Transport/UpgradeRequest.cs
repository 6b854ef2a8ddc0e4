using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Transport;

/// <summary>
/// An HTTP/1.1 WebSocket upgrade request read off a raw connection, taken only when it is plain:
/// GET, HTTP/1.1, a path without percent-escapes, printable ASCII, lines ending in CRLF, at most
/// Kestrel's header count, no body, each header that matters present once, and a valid
/// version-13 key. Anything else (another method, HTTP/1.0, a body, folded or duplicated
/// headers, bare LF or CR, too many headers, a bad key, TLS, HTTP/2) is not ours: the
/// connection goes to Kestrel's HTTP server unread, which answers it the standard way (400,
/// 431, or an upgrade of its own) — one reading of every request, Kestrel's.
/// </summary>
public sealed class UpgradeRequest
{
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    /// <summary>Kestrel's default MaxRequestHeaderCount.</summary>
    public const int DefaultMaxHeaders = 100;

    private UpgradeRequest(string path, string query, string? origin, string? authorization, string key)
    {
        Path = path;
        Query = query;
        Origin = origin;
        Authorization = authorization;
        Key = key;
    }

    /// <summary>The path, e.g. "/chat".</summary>
    public string Path { get; }

    /// <summary>The query string with its "?", or empty.</summary>
    public string Query { get; }

    public string? Origin { get; }

    public string? Authorization { get; }

    /// <summary>Sec-WebSocket-Key.</summary>
    public string Key { get; }

    /// <summary>The Sec-WebSocket-Accept value answering this request's key (RFC 6455 §4.2.2).</summary>
    public string AcceptKey() => AcceptKeyFor(Key);

    /// <summary>The Sec-WebSocket-Accept value answering a valid Sec-WebSocket-Key (24 characters of base64).</summary>
    public static string AcceptKeyFor(string key)
    {
        if (!IsValidKey(key))
        {
            throw new ArgumentException("Not a valid Sec-WebSocket-Key.", nameof(key));
        }

        Span<byte> input = stackalloc byte[60];
        var length = Encoding.ASCII.GetBytes(key, input);
        length += Encoding.ASCII.GetBytes("258EAFA5-E914-47DA-95CA-C5AB0DC85B11", input[length..]);
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(input[..length], hash);
        return Convert.ToBase64String(hash);
    }

    /// <summary>
    /// Looks at the bytes received so far. <see cref="ParseStatus.NeedMore"/>: the head is not
    /// complete yet (and may still be ours); <see cref="ParseStatus.NotOurs"/>: hand the
    /// connection to the HTTP server; <see cref="ParseStatus.Parsed"/>: <paramref name="request"/>
    /// is set and the head is <paramref name="headLength"/> bytes long.
    /// </summary>
    /// <param name="maxHeadBytes">The longest head taken (Kestrel's request line and header limits together).</param>
    /// <param name="maxHeaders">The most header lines taken (Kestrel's MaxRequestHeaderCount): with more, Kestrel answers 431.</param>
    /// <param name="scanned">
    /// Bytes of <paramref name="buffer"/> a previous call already looked at (0 on the first
    /// call; updated), so that a head arriving a byte at a time is scanned once, not once per byte.
    /// </param>
    /// <remarks>
    /// Lines must end in CRLF. Kestrel also takes a bare LF as a line end; a head with a bare
    /// LF or a bare CR anywhere is not ours (Kestrel reads it, or refuses it with 400), so the
    /// two parsers never read one request two ways.
    /// </remarks>
    public static ParseStatus TryParse(ReadOnlySequence<byte> buffer, int maxHeadBytes, int maxHeaders, ref long scanned, out UpgradeRequest? request, out long headLength)
    {
        request = null;
        headLength = 0;
        if (!StartsWithGet(buffer))
        {
            return buffer.Length < 4 ? ParseStatus.NeedMore : ParseStatus.NotOurs;
        }

        var end = FindHeadEnd(buffer, ref scanned, out var bareLineEnd);
        if (bareLineEnd)
        {
            return ParseStatus.NotOurs;
        }

        if (end < 0)
        {
            return buffer.Length > maxHeadBytes ? ParseStatus.NotOurs : ParseStatus.NeedMore;
        }

        if (end - HeadEnd.Length > maxHeadBytes)
        {
            return ParseStatus.NotOurs;
        }

        headLength = end;
        var headSequence = buffer.Slice(0, end - HeadEnd.Length);
        var head = headSequence.IsSingleSegment ? headSequence.FirstSpan : headSequence.ToArray();
        request = Parse(head, maxHeaders);
        return request is null ? ParseStatus.NotOurs : ParseStatus.Parsed;
    }

    /// <summary>Parses a complete head (for tests); see <see cref="TryParse(ReadOnlySequence{byte}, int, int, ref long, out UpgradeRequest?, out long)"/>.</summary>
    public static ParseStatus TryParse(ReadOnlySequence<byte> buffer, int maxHeadBytes, int maxHeaders, out UpgradeRequest? request, out long headLength)
    {
        long scanned = 0;
        return TryParse(buffer, maxHeadBytes, maxHeaders, ref scanned, out request, out headLength);
    }

    /// <summary>
    /// The length of the head including its blank line (CRLF CRLF), or -1 while it has not all
    /// arrived; <paramref name="bareLineEnd"/> when a LF without its CR, or a CR without its LF,
    /// came first. Looks only at bytes from <paramref name="scanned"/> on (a few before it for context).
    /// </summary>
    private static long FindHeadEnd(ReadOnlySequence<byte> buffer, ref long scanned, out bool bareLineEnd)
    {
        bareLineEnd = false;
        var from = Math.Max(0, scanned - 3);
        var position = from;
        uint last4 = 0;
        byte previous = 0;
        foreach (var segment in buffer.Slice(from))
        {
            foreach (var b in segment.Span)
            {
                last4 = (last4 << 8) | b;
                if (position >= scanned && position > 0)
                {
                    if ((b == '\n' && previous != '\r') || (previous == '\r' && b != '\n'))
                    {
                        bareLineEnd = true;
                        return -1;
                    }

                    if (last4 == 0x0D0A0D0A && position >= 3)
                    {
                        scanned = position + 1;
                        return position + 1;
                    }
                }

                previous = b;
                position++;
            }
        }

        scanned = position;
        return -1;
    }

    private static bool StartsWithGet(ReadOnlySequence<byte> buffer)
    {
        Span<byte> start = stackalloc byte[4];
        var count = (int)Math.Min(buffer.Length, 4);
        buffer.Slice(0, count).CopyTo(start);
        return "GET "u8[..count].SequenceEqual(start[..count]);
    }

    private static UpgradeRequest? Parse(ReadOnlySpan<byte> head, int maxHeaders)
    {
        foreach (var b in head)
        {
            if (b >= 0x7F || (b < 0x20 && b is not ((byte)'\r' or (byte)'\n' or (byte)'\t')))
            {
                return null;
            }
        }

        var text = Encoding.ASCII.GetString(head);
        var lines = text.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[0] != "GET" || requestLine[2] != "HTTP/1.1" || !requestLine[1].StartsWith('/'))
        {
            return null;
        }

        var target = requestLine[1];
        var queryAt = target.IndexOf('?', StringComparison.Ordinal);
        var path = queryAt < 0 ? target : target[..queryAt];
        var query = queryAt < 0 ? string.Empty : target[queryAt..];
        if (path.Contains('%', StringComparison.Ordinal) || path.Contains("//", StringComparison.Ordinal) || path.Contains("/.", StringComparison.Ordinal))
        {
            // Escapes and dot segments: Kestrel normalises those; let it.
            return null;
        }

        if (lines.Length - 1 > maxHeaders)
        {
            // Kestrel answers 431 to this.
            return null;
        }

        string? host = null, upgrade = null, connection = null, key = null, version = null, origin = null, authorization = null;
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i];
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || line[0] is ' ' or '\t' || line.AsSpan(0, colon).ContainsAny(' ', '\t'))
            {
                return null;
            }

            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t');
            var known = name.ToLowerInvariant() switch
            {
                "host" => Set(ref host, value),
                "upgrade" => Set(ref upgrade, value),
                "connection" => Set(ref connection, value),
                "sec-websocket-key" => Set(ref key, value),
                "sec-websocket-version" => Set(ref version, value),
                "origin" => Set(ref origin, value),
                "authorization" => Set(ref authorization, value),
                "content-length" or "transfer-encoding" or "expect" => false,
                _ => true,
            };
            if (!known)
            {
                return null;
            }
        }

        if (string.IsNullOrEmpty(host) || !HasToken(upgrade, "websocket") || !HasToken(connection, "upgrade") || version != "13" || !IsValidKey(key))
        {
            return null;
        }

        return new UpgradeRequest(path, query, origin, authorization, key!);
    }

    /// <summary>Sets a header seen for the first time; false for a repeat.</summary>
    private static bool Set(ref string? field, string value)
    {
        if (field is not null)
        {
            return false;
        }

        field = value;
        return true;
    }

    private static bool HasToken(string? value, string token)
    {
        if (value is null)
        {
            return false;
        }

        foreach (var part in value.Split(','))
        {
            if (part.Trim(' ', '\t').Equals(token, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsValidKey(string? key)
    {
        Span<byte> decoded = stackalloc byte[18];
        return key is { Length: 24 } && Convert.TryFromBase64String(key, decoded, out var written) && written == 16;
    }

    public enum ParseStatus
    {
        NeedMore,
        NotOurs,
        Parsed,
    }
}
