using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// A WebSocket connection's place under the caps, taken at its handshake and given back when it
/// ends (<see cref="ConnectionLimits.Release"/>). A value, not an object: an idle connection
/// keeps it in the state machine that runs it.
/// </summary>
public readonly struct ConnectionSlot
{
    internal ConnectionSlot(UInt128 address, bool counted, bool perIp)
    {
        Address = address;
        Counted = counted;
        PerIp = perIp;
    }

    internal UInt128 Address { get; }

    internal bool Counted { get; }

    internal bool PerIp { get; }
}

/// <summary>
/// The front-end's connection caps (protocol.md "Bounds"): WebSockets held by the whole
/// front-end (<see cref="BrokerOptions.MaxConnections"/>, or Kestrel's
/// MaxConcurrentUpgradedConnections when lower) and by one client address
/// (<see cref="BrokerOptions.MaxConnectionsPerIp"/>; an IPv4 address or an IPv6 /64, since one
/// IPv6 client commonly holds a whole /64). Every transport takes a slot after reading the
/// upgrade request and before answering 101, and releases it when the socket ends; a refusal is
/// HTTP 503 with Retry-After. Counting costs two interlocked operations per connection and one
/// dictionary entry per client address, not per connection.
/// </summary>
public sealed class ConnectionLimits
{
    /// <summary>Seconds a refused client is told to wait (Retry-After).</summary>
    public const int RetryAfterSeconds = 5;

    /// <summary>Descriptors kept out of the derived cap: at least this many ...</summary>
    public const int DescriptorReserveMin = 256;

    /// <summary>... or this fraction of the limit (1/20), whichever is more.</summary>
    public const int DescriptorReserveDivisor = 20;

    /// <summary>The cap when the descriptor limit cannot be read (not Linux) or is unlimited.</summary>
    public const int FallbackMaxConnections = 100_000;

    private readonly ConcurrentDictionary<UInt128, int> _perAddress = new();
    private readonly ClientEventLog _events;
    private int _count;

    public ConnectionLimits(IOptions<BrokerOptions> options, IOptions<KestrelServerOptions> kestrel, ClientEventLog events)
    {
        _events = events;
        var configured = options.Value.MaxConnections ?? DerivedMaxConnections();
        var max = configured == 0 ? int.MaxValue : configured;
        if (kestrel.Value.Limits.MaxConcurrentUpgradedConnections is { } upgraded)
        {
            max = (int)Math.Min(max, upgraded);
        }

        Max = max;
        MaxPerAddress = options.Value.MaxConnectionsPerIp == 0 ? int.MaxValue : options.Value.MaxConnectionsPerIp;
    }

    /// <summary>The front-end's cap in effect (int.MaxValue: none).</summary>
    public int Max { get; }

    /// <summary>The per-address cap in effect (int.MaxValue: none).</summary>
    public int MaxPerAddress { get; }

    /// <summary>WebSocket connections holding a slot now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Addresses holding at least one slot now.</summary>
    internal int AddressCount => _perAddress.Count;

    /// <summary>Slots held by the client address (its IPv6 /64) of <paramref name="address"/>.</summary>
    public int CountFor(IPAddress address) => _perAddress.TryGetValue(KeyOf(address), out var count) ? count : 0;

    /// <summary>
    /// The process's open-file limit (the soft RLIMIT_NOFILE, read from /proc/self/limits)
    /// minus a reserve of max(256, limit / 20) for everything that is not a WebSocket — the
    /// silo and cluster connections, Redis, /healthz and API requests, handshakes in progress,
    /// files — so that those still work when the cap is reached. Where the limit cannot be
    /// read, or is unlimited, <see cref="FallbackMaxConnections"/>.
    /// </summary>
    public static int DerivedMaxConnections()
    {
        var limit = OpenFileLimit();
        if (limit is not { } descriptors || descriptors >= int.MaxValue)
        {
            return FallbackMaxConnections;
        }

        var reserve = Math.Max(DescriptorReserveMin, descriptors / DescriptorReserveDivisor);
        return (int)Math.Max(1, descriptors - reserve);
    }

    /// <summary>
    /// Takes a slot for a connection from <paramref name="address"/> (null: an address the
    /// per-address cap cannot apply to, e.g. a Unix socket). False, with the refusal to answer,
    /// past either cap.
    /// </summary>
    public bool TryAcquire(IPAddress? address, out ConnectionSlot slot, out Refusal refusal)
    {
        slot = default;
        refusal = default;
        if (Interlocked.Increment(ref _count) > Max)
        {
            Interlocked.Decrement(ref _count);
            _events.Count(ClientEvent.RefusedConnectionCap);
            refusal = new Refusal(StatusCodes.Status503ServiceUnavailable, $"This node holds its maximum of {Max} connections; try again later or connect to another node.");
            return false;
        }

        if (address is null || MaxPerAddress == int.MaxValue)
        {
            slot = new ConnectionSlot(default, counted: true, perIp: false);
            return true;
        }

        var key = KeyOf(address);
        while (true)
        {
            if (_perAddress.TryGetValue(key, out var held))
            {
                if (held >= MaxPerAddress)
                {
                    Interlocked.Decrement(ref _count);
                    _events.Count(ClientEvent.RefusedPerIpCap);
                    refusal = new Refusal(StatusCodes.Status503ServiceUnavailable, $"Your address holds its maximum of {MaxPerAddress} connections to this node; close some or try again later.");
                    return false;
                }

                if (_perAddress.TryUpdate(key, held + 1, held))
                {
                    break;
                }
            }
            else if (_perAddress.TryAdd(key, 1))
            {
                break;
            }
        }

        slot = new ConnectionSlot(key, counted: true, perIp: true);
        return true;
    }

    /// <summary>Gives a slot back (once, when its connection ends); a default slot is ignored.</summary>
    public void Release(in ConnectionSlot slot)
    {
        if (!slot.Counted)
        {
            return;
        }

        Interlocked.Decrement(ref _count);
        if (!slot.PerIp)
        {
            return;
        }

        while (_perAddress.TryGetValue(slot.Address, out var held))
        {
            if (held <= 1
                ? _perAddress.TryRemove(new KeyValuePair<UInt128, int>(slot.Address, held))
                : _perAddress.TryUpdate(slot.Address, held - 1, held))
            {
                return;
            }
        }
    }

    /// <summary>An IPv4 address (IPv4-mapped IPv6 included) as itself; an IPv6 address as its /64.</summary>
    internal static UInt128 KeyOf(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        Span<byte> bytes = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(bytes[12..], out _);

            // Marked, so that no IPv6 /64 can collide with it.
            bytes[0] = 0xFF;
            return new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
        }

        address.TryWriteBytes(bytes, out _);
        return new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(bytes), 0);
    }

    private static long? OpenFileLimit()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (!line.StartsWith("Max open files", StringComparison.Ordinal))
                {
                    continue;
                }

                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : null;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or no /proc: the fallback.
        }

        return null;
    }
}
