using System.Collections.Concurrent;
using Broker.Grains.Streams;
using Orleans.Runtime;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Broker.Streams.Tests.Infrastructure;

/// <summary>The application grain of these tests: hears every room of the namespace "providers" and records each item.</summary>
public interface IStreamRecorderGrain : IGrainWithStringKey
{
    Task Ping();
}

[ImplicitStreamSubscription(StreamRecorder.StreamNamespace)]
public sealed class StreamRecorderGrain(ILocalSiloDetails silo) : Grain, IStreamRecorderGrain, IStreamSubscriptionObserver
{
    public Task Ping() => Task.CompletedTask;

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory)
    {
        var handle = handleFactory.Create<RoomStreamItem>();
        await handle.ResumeAsync((item, _) =>
        {
            StreamRecorder.Record(item, silo.SiloAddress.ToString());
            return Task.CompletedTask;
        });
    }
}

/// <summary>
/// What the recorder grains heard, per room, in arrival order (the silos run in this process).
/// Waiters wake on every recorded item.
/// </summary>
public static class StreamRecorder
{
    /// <summary>The broker namespace of these tests' rooms.</summary>
    public const string Namespace = "providers";

    public const string StreamNamespace = BrokerStreams.NamespacePrefix + Namespace;

    private static readonly ConcurrentDictionary<string, List<Delivery>> s_rooms = new();
    private static TaskCompletionSource s_changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static void Record(RoomStreamItem item, string silo)
    {
        var log = s_rooms.GetOrAdd(item.Room, _ => []);
        lock (log)
        {
            log.Add(new Delivery(item.Seq, DateTime.UtcNow, silo));
        }

        Interlocked.Exchange(ref s_changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public static IReadOnlyList<Delivery> Room(string room)
    {
        if (!s_rooms.TryGetValue(room, out var log))
        {
            return [];
        }

        lock (log)
        {
            return [.. log];
        }
    }

    /// <summary>Completes when the condition holds (checked on every recorded item); false after the timeout.</summary>
    public static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var changed = Volatile.Read(ref s_changed).Task;
            if (condition())
            {
                return true;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return false;
            }

            await Task.WhenAny(changed, Task.Delay(left));
        }
    }
}

public readonly record struct Delivery(long Seq, DateTime At, string Silo);
