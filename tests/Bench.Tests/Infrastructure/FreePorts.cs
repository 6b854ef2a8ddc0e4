using System.Net;
using System.Net.Sockets;

namespace Broker.Bench.Tests.Infrastructure;

/// <summary>Free TCP ports below the ephemeral range (32768+), for the embedded silo.</summary>
public static class FreePorts
{
    private static int s_next = 20000 + (Environment.ProcessId % 200 * 50);

    public static int Next()
    {
        for (var attempt = 0; attempt < 2000; attempt++)
        {
            var port = Interlocked.Increment(ref s_next);
            if (port >= 32000)
            {
                Interlocked.Exchange(ref s_next, 20000);
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

        throw new InvalidOperationException("No free port found between 20000 and 32000.");
    }
}
