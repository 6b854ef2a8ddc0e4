using Broker.Frontend.Commands;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>The per-connection memory of the proxy's answers: forgotten on leave, bounded against probing.</summary>
public sealed class ProxyAnswersTests
{
    [Theory]
    [InlineData(1, 256)]
    [InlineData(100, 400)]
    [InlineData(1000, 4000)]
    [InlineData(int.MaxValue, int.MaxValue)]
    public void For_MaxRooms_FourActionsPerRoomAtLeast256(int maxRooms, int capacity)
    {
        Assert.Equal(capacity, ProxyAnswers.For(maxRooms));
    }

    [Fact]
    public void Remember_ThenForget_OnlyThatRoomForgotten()
    {
        var answers = new ProxyAnswers(16);
        answers.Remember("a", RoomAction.Join, true, _ => false);
        answers.Remember("a", RoomAction.Publish, false, _ => false);
        answers.Remember("b", RoomAction.Join, true, _ => false);

        answers.Forget("a");

        Assert.False(answers.TryGet("a", RoomAction.Join, out _));
        Assert.False(answers.TryGet("a", RoomAction.Publish, out _));
        Assert.True(answers.TryGet("b", RoomAction.Join, out var allowed) && allowed);
    }

    [Fact]
    public void Remember_ProbingManyRooms_NeverAboveCapacityAndJoinedRoomsKept()
    {
        var answers = new ProxyAnswers(256);
        var joined = new HashSet<string> { "mine-1", "mine-2" };
        answers.Remember("mine-1", RoomAction.Publish, true, joined.Contains);
        answers.Remember("mine-2", RoomAction.Publish, false, joined.Contains);

        for (var i = 0; i < 100_000; i++)
        {
            answers.Remember($"probe-{i}", RoomAction.History, false, joined.Contains);
            Assert.True(answers.Count <= answers.Capacity);
        }

        Assert.True(answers.TryGet("mine-1", RoomAction.Publish, out var first) && first);
        Assert.True(answers.TryGet("mine-2", RoomAction.Publish, out var second) && !second);
        Assert.True(answers.TryGet("probe-99999", RoomAction.History, out _));
    }

    [Fact]
    public void Remember_FullOfJoinedRooms_ClearsRatherThanGrow()
    {
        var answers = new ProxyAnswers(4);
        for (var i = 0; i < 4; i++)
        {
            answers.Remember($"r{i}", RoomAction.Join, true, _ => true);
        }

        answers.Remember("one-more", RoomAction.Join, true, _ => true);

        Assert.Equal(1, answers.Count);
        Assert.True(answers.TryGet("one-more", RoomAction.Join, out _));
    }

    [Fact]
    public void Remember_SameKeyWhenFull_UpdatedInPlace()
    {
        var answers = new ProxyAnswers(2);
        answers.Remember("a", RoomAction.Join, true, _ => false);
        answers.Remember("b", RoomAction.Join, true, _ => false);

        answers.Remember("a", RoomAction.Join, false, _ => false);

        Assert.Equal(2, answers.Count);
        Assert.True(answers.TryGet("a", RoomAction.Join, out var allowed) && !allowed);
    }
}
