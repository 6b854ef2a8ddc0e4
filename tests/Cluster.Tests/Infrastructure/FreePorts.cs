using System.Net;
using System.Net.Sockets;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>Free TCP ports on 127.0.0.1 between 20000 and 32000 (below the ephemeral range).</summary>
public static class FreePorts
{
    private const int First = 20000;
    private const int Last = 32000;
    private static int s_next = First + (Environment.ProcessId % 200 * 50);

    public static int Next()
    {
        for (var attempt = 0; attempt < Last - First; attempt++)
        {
            var port = Interlocked.Increment(ref s_next);
            if (port >= Last)
            {
                Interlocked.Exchange(ref s_next, First);
                continue;
            }

            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                listener.Stop();
                return port;
            }
            catch (SocketException)
            {
                // In use; try the next one.
            }
        }

        throw new InvalidOperationException($"No free port found between {First} and {Last}.");
    }
}
