using System.Text.Json;
using Broker.Frontend.Commands;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>The "rooms" claim, parsed: patterns, capabilities, and every bad shape ignored without throwing.</summary>
public sealed class RoomGrantsTests
{
    private static RoomGrants Parse(string json, string ns = "chat")
    {
        using var document = JsonDocument.Parse(json);
        return RoomGrants.Parse(document.RootElement.Clone(), ns);
    }

    [Fact]
    public void Parse_ProtocolExample_GrantsAsWritten()
    {
        var grants = Parse("""{"chat": {"team-42": ["join","publish","presence","history"], "public-*": ["join","history"]}}""");

        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.Publish | RoomCapabilities.Presence | RoomCapabilities.History, grants.For("team-42"));
        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.History, grants.For("public-lobby"));
        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.History, grants.For("public-"));
        Assert.Equal(RoomCapabilities.None, grants.For("public"));
        Assert.Equal(RoomCapabilities.None, grants.For("team-421"));
        Assert.Equal(RoomCapabilities.None, grants.For("team-4"));
        Assert.True(grants.Allows("public-x", RoomAction.Join));
        Assert.False(grants.Allows("public-x", RoomAction.Publish));
    }

    [Fact]
    public void Parse_LoneStar_EveryRoom()
    {
        var grants = Parse("""{"chat": {"*": ["join"]}}""");

        Assert.True(grants.Allows("anything", RoomAction.Join));
        Assert.True(grants.Allows("*", RoomAction.Join));
        Assert.False(grants.Allows("anything", RoomAction.History));
    }

    [Fact]
    public void Parse_OverlappingPatterns_CapabilitiesAddUp()
    {
        var grants = Parse("""{"chat": {"*": ["join"], "a-*": ["history"], "a-b*": ["presence"], "a-bc": ["publish"]}}""");

        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.History | RoomCapabilities.Presence | RoomCapabilities.Publish, grants.For("a-bc"));
        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.History | RoomCapabilities.Presence, grants.For("a-bd"));
        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.History, grants.For("a-x"));
        Assert.Equal(RoomCapabilities.Join, grants.For("b"));
    }

    [Fact]
    public void Parse_StarInTheMiddle_IsPartOfAnExactName()
    {
        var grants = Parse("""{"chat": {"a*b": ["join"]}}""");

        Assert.True(grants.Allows("a*b", RoomAction.Join));
        Assert.False(grants.Allows("axb", RoomAction.Join));
    }

    [Fact]
    public void Parse_OtherNamespace_GrantsNothingHere()
    {
        var grants = Parse("""{"other": {"*": ["join","publish","presence","history"]}}""");

        Assert.True(grants.IsEmpty);
        Assert.Equal(RoomCapabilities.None, grants.For("x"));
        Assert.False(Parse("""{"other": {"*": ["join"]}}""", "other").IsEmpty);
    }

    [Fact]
    public void Parse_ClaimAsJsonString_Unwrapped()
    {
        var inner = """{"chat": {"room": ["join"]}}""";

        var grants = RoomGrants.Parse(JsonSerializer.SerializeToElement(inner), "chat");

        Assert.True(grants.Allows("room", RoomAction.Join));
    }

    [Fact]
    public void Parse_UnknownCapabilitiesAndWrongCase_Ignored()
    {
        var grants = Parse("""{"chat": {"r": ["join", "admin", "PUBLISH", "", 7, null, ["history"], {"presence": true}]}}""");

        Assert.Equal(RoomCapabilities.Join, grants.For("r"));
    }

    [Theory]
    [InlineData("null")]
    [InlineData("42")]
    [InlineData("true")]
    [InlineData("[]")]
    [InlineData("[{\"chat\": {\"*\": [\"join\"]}}]")]
    [InlineData("\"\"")]
    [InlineData("\"not json\"")]
    [InlineData("\"[1,2]\"")]
    [InlineData("\"{\\\"chat\\\": \"")]
    [InlineData("{}")]
    [InlineData("{\"chat\": null}")]
    [InlineData("{\"chat\": []}")]
    [InlineData("{\"chat\": \"join\"}")]
    [InlineData("{\"chat\": {\"*\": \"join\"}}")]
    [InlineData("{\"chat\": {\"*\": null}}")]
    [InlineData("{\"chat\": {\"*\": {\"join\": true}}}")]
    [InlineData("{\"chat\": {\"*\": []}}")]
    [InlineData("{\"chat\": {\"\": [\"join\"]}}")]
    public void Parse_BadShapes_GrantNothingWithoutThrowing(string claim)
    {
        using var document = JsonDocument.Parse(claim);

        var grants = RoomGrants.Parse(document.RootElement.Clone(), "chat");

        Assert.True(grants.IsEmpty, claim);
        Assert.Equal(RoomCapabilities.None, grants.For("anything"));
    }

    [Fact]
    public void Parse_BadPartsBesideGoodOnes_GoodOnesKept()
    {
        var grants = Parse("""{"chat": {"bad": "join", "good": ["join"], "": ["join"], "worse": {"x": 1}}, "other": 5}""");

        Assert.True(grants.Allows("good", RoomAction.Join));
        Assert.False(grants.Allows("bad", RoomAction.Join));
        Assert.False(grants.Allows("", RoomAction.Join));
    }

    [Fact]
    public void Parse_NamespaceTwice_AddsUp()
    {
        var grants = Parse("""{"chat": {"r": ["join"]}, "chat": {"r": ["history"]}}""");

        Assert.Equal(RoomCapabilities.Join | RoomCapabilities.History, grants.For("r"));
    }

    [Fact]
    public void Parse_NoClaim_None()
    {
        Assert.Same(RoomGrants.None, RoomGrants.Parse(null, "chat"));
    }

    [Fact]
    public void Parse_DeeplyNestedString_GrantsNothing()
    {
        var deep = new string('[', 200) + new string(']', 200);

        var grants = RoomGrants.Parse(JsonSerializer.SerializeToElement(deep), "chat");

        Assert.True(grants.IsEmpty);
    }
}
