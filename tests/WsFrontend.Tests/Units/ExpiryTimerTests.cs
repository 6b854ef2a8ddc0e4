using System.Net.WebSockets;
using Broker.Frontend.Connections;
using Broker.Frontend.Options;

namespace Broker.Frontend.Tests.Units;

/// <summary>
/// A connection's expiry timer (ClientConnection.ExpireAt) on a clock the test moves: a timer
/// cannot be set for more than about 49.7 days, so a far expiry is reached in steps.
/// </summary>
public sealed class ExpiryTimerTests
{
    /// <summary>What System.Threading.Timer accepts at most (uint.MaxValue - 1 ms); more throws.</summary>
    private static readonly TimeSpan TimerLimit = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0);

    [Theory]
    [InlineData(60)]
    [InlineData(3650)]
    [InlineData(365 * 300)]
    public void ExpireAt_FarExpiry_NoTimerPastTheLimitAndClosedAtTheExpiry(int days)
    {
        var clock = new StepClock();
        var connection = Connection();
        var expires = clock.GetUtcNow().AddDays(days);

        connection.ExpireAt(expires, clock);

        while (clock.GetUtcNow() < expires)
        {
            Assert.False(connection.IsClosing, $"closed {expires - clock.GetUtcNow()} before the expiry");
            clock.FireNext();
        }

        Assert.Equal(expires, clock.GetUtcNow());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, connection.CloseStatus);
        Assert.All(clock.Dues, due => Assert.True(due <= TimerLimit, $"a timer was set for {due}"));
    }

    [Fact]
    public void ExpireAt_RefreshedBetweenSteps_TheOldStepDoesNotClose()
    {
        var clock = new StepClock();
        var connection = Connection();
        var first = clock.GetUtcNow().AddDays(90);
        connection.ExpireAt(first, clock);
        var stale = clock.Pending!;

        connection.ExpireAt(first.AddDays(365), clock);
        clock.Advance(TimeSpan.FromDays(91));
        stale.Fire();

        Assert.False(connection.IsClosing);
        Assert.Equal(first.AddDays(365), connection.Expires);
    }

    private static ClientConnection Connection() =>
        new("c-test", "user", "chat", new NamespaceOptions(), new HeldWebSocket(), 16, BrokerOptions.DefaultOutboxBytes, TimeSpan.FromSeconds(5));

    /// <summary>A clock that moves only when a timer is fired; it records every timer's due time.</summary>
    private sealed class StepClock : TimeProvider
    {
        private DateTimeOffset _now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public List<TimeSpan> Dues { get; } = [];

        public StepTimer? Pending { get; private set; }

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime > TimerLimit)
            {
                // What System.Threading.Timer does.
                throw new ArgumentOutOfRangeException(nameof(dueTime));
            }

            Dues.Add(dueTime);
            Pending = new StepTimer(this, callback, state, _now + dueTime);
            return Pending;
        }

        /// <summary>Moves the clock to the last timer made and fires it.</summary>
        public void FireNext()
        {
            var timer = Pending ?? throw new InvalidOperationException("No timer is set.");
            Pending = null;
            _now = timer.At;
            timer.Fire();
        }
    }

    private sealed class StepTimer(StepClock clock, TimerCallback callback, object? state, DateTimeOffset at) : ITimer
    {
        public DateTimeOffset At => at;

        /// <summary>Runs the callback, disposed or not: a real timer's callback may already be on its way when it is disposed.</summary>
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => throw new NotSupportedException();

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public override string ToString() => $"{at} ({clock.GetUtcNow()})";
    }
}
