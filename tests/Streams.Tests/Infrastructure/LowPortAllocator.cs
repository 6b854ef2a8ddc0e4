using System.Net;
using System.Net.Sockets;
using Orleans.TestingHost;

namespace Broker.Streams.Tests.Infrastructure;

/// <summary>
/// Replaces TestClusterPortAllocator, whose gateway ports fall in 40000-50000 (inside the
/// ephemeral range, where they can collide with outgoing connections): silo and gateway ports
/// both come from 20000-32000 here, checked free by binding them.
/// </summary>
public sealed class LowPortAllocator : ITestClusterPortAllocator
{
    public const int MinPort = 20000;
    public const int MaxPort = 32000;

    private static readonly HashSet<int> s_handedOut = [];

    public (int, int) AllocateConsecutivePortPairs(int numPorts)
    {
        lock (s_handedOut)
        {
            var silo = FindFreeRange(numPorts);
            var gateway = FindFreeRange(numPorts);
            return (silo, gateway);
        }
    }

    public void Dispose()
    {
    }

    private static int FindFreeRange(int count)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var start = Random.Shared.Next(MinPort, MaxPort - count);
            start -= start % Math.Max(count, 1);
            if (start < MinPort)
            {
                continue;
            }

            var ports = Enumerable.Range(start, count).ToList();
            if (ports.Any(s_handedOut.Contains) || !ports.All(IsFree))
            {
                continue;
            }

            s_handedOut.UnionWith(ports);
            return start;
        }

        throw new InvalidOperationException($"No {count} consecutive free ports between {MinPort} and {MaxPort}.");
    }

    private static bool IsFree(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
