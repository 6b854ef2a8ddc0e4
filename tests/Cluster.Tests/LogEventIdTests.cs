using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// Every [LoggerMessage] of the product has an event id of its own (docs/operations.md, "Logs"):
/// read from the built assemblies' metadata, the ones the front-end and the silo run, and the sample bot's.
/// </summary>
public sealed class LogEventIdTests(ITestOutputHelper output)
{
    private static readonly string[] Assemblies =
    [
        BuildOutput.FrontendDll,
        Path.Combine(Path.GetDirectoryName(BuildOutput.FrontendDll)!, "Broker.Grains.dll"),
        Path.Combine(Path.GetDirectoryName(BuildOutput.FrontendDll)!, "Broker.Transport.dll"),
        BuildOutput.SiloDll,
        BuildOutput.BotDll, // the sample's own range (9000-9099) must not take the broker's ids either
    ];

    [Fact]
    public void LoggerMessages_AllHaveAnEventId_NoneShared()
    {
        var messages = Assemblies.SelectMany(LoggerMessages).ToList();
        foreach (var message in messages.OrderBy(m => m.EventId))
        {
            output.WriteLine($"{message.EventId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none",5} {message.Method}");
        }

        Assert.True(messages.Count > 40, $"Only {messages.Count} [LoggerMessage] methods found: the reader misses some.");
        Assert.Empty(messages.Where(m => m.EventId is null or 0).Select(m => m.Method));
        Assert.Empty(messages.GroupBy(m => m.EventId).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}"));
    }

    private static List<(string Method, int? EventId)> LoggerMessages(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        var md = pe.GetMetadataReader();
        var found = new List<(string, int?)>();
        foreach (var handle in md.CustomAttributes)
        {
            var attribute = md.GetCustomAttribute(handle);
            if (attribute.Parent.Kind != HandleKind.MethodDefinition || AttributeName(md, attribute) != "Microsoft.Extensions.Logging.LoggerMessageAttribute")
            {
                continue;
            }

            var value = attribute.DecodeValue(new NameProvider());
            int? eventId = null;

            // LoggerMessage(int eventId, LogLevel level, string message) names the id first.
            if (value.FixedArguments.Length == 3 && value.FixedArguments[0].Value is int fixedId)
            {
                eventId = fixedId;
            }

            foreach (var named in value.NamedArguments)
            {
                if (named.Name == "EventId" && named.Value is int namedId)
                {
                    eventId = namedId;
                }
            }

            var method = md.GetMethodDefinition((MethodDefinitionHandle)attribute.Parent);
            var type = md.GetTypeDefinition(method.GetDeclaringType());
            found.Add(($"{Path.GetFileNameWithoutExtension(path)}: {md.GetString(type.Namespace)}.{md.GetString(type.Name)}.{md.GetString(method.Name)}", eventId));
        }

        return found;
    }

    private static string AttributeName(MetadataReader md, CustomAttribute attribute)
    {
        EntityHandle parent = attribute.Constructor.Kind == HandleKind.MemberReference
            ? md.GetMemberReference((MemberReferenceHandle)attribute.Constructor).Parent
            : md.GetMethodDefinition((MethodDefinitionHandle)attribute.Constructor).GetDeclaringType();
        return parent.Kind switch
        {
            HandleKind.TypeReference => $"{md.GetString(md.GetTypeReference((TypeReferenceHandle)parent).Namespace)}.{md.GetString(md.GetTypeReference((TypeReferenceHandle)parent).Name)}",
            HandleKind.TypeDefinition => $"{md.GetString(md.GetTypeDefinition((TypeDefinitionHandle)parent).Namespace)}.{md.GetString(md.GetTypeDefinition((TypeDefinitionHandle)parent).Name)}",
            _ => string.Empty,
        };
    }

    /// <summary>Names types just enough to decode the attribute's arguments (LogLevel is an int enum).</summary>
    private sealed class NameProvider : ICustomAttributeTypeProvider<string>
    {
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();

        public string GetSystemType() => "System.Type";

        public string GetSZArrayType(string elementType) => elementType + "[]";

        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeDefinition(handle).Name);

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeReference(handle).Name);

        public string GetTypeFromSerializedName(string name) => name;

        public PrimitiveTypeCode GetUnderlyingEnumType(string type) => PrimitiveTypeCode.Int32;

        public bool IsSystemType(string type) => type == "System.Type";
    }
}
