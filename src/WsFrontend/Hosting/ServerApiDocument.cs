using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The OpenAPI document of the server API, served at /openapi/v1.json (without the API key: it
/// describes the API, it does nothing). Built from the endpoints' metadata on the first
/// request for it, not at start-up and not at build time (no build-time generation package
/// is referenced), so the broker starts as fast as before.
/// </summary>
public static class ServerApiDocument
{
    public const string Name = "v1";

    private const string KeyScheme = "apiKey";

    public static IServiceCollection AddServerApiDocument(this IServiceCollection services) =>
        services.AddOpenApi(Name, options =>
        {
            // The WebSocket namespaces, /echo and /healthz are not this API.
            options.ShouldInclude = description => description.RelativePath?.StartsWith("api/", StringComparison.Ordinal) == true;
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Broker server API",
                    Version = "1.1",
                    Description = "For the application's own back-end: publish, send, presence, history and disconnect in a namespace as the trusted user \"server\", and the cluster's info (docs/protocol.md, \"Server HTTP API\"). "
                        + "JSON only: every POST, and any request with a body, says Content-Type: application/json (else 415). "
                        + "With Broker:ApiKey set, send \"Authorization: Bearer KEY\"; without one, only direct loopback callers are served (no Forwarded or X-Forwarded-For header). "
                        + "Errors are {\"error\": sentence, \"code\"}.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[KeyScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "Broker:ApiKey. Unset: no key, loopback callers only.",
                };
                return Task.CompletedTask;
            });
            options.AddOperationTransformer((operation, context, _) =>
            {
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(KeyScheme, context.Document)] = [] }];
                foreach (var parameter in operation.Parameters ?? [])
                {
                    // Bound as strings, so that a bad value gets this API's own 400 and sentence;
                    // described as what they are.
                    if (parameter is OpenApiParameter { Name: "since" or "limit" } whole)
                    {
                        var min = whole.Name == "since" ? "0" : "1";
                        whole.Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int64", Minimum = min };
                        whole.Description = whole.Name == "since"
                            ? "The last seq you have: the page starts after it. Without it, the latest messages."
                            : "Messages at most; capped by the namespace's history window and by 100.";
                    }
                    else if (parameter is OpenApiParameter { Name: "Idempotency-Key" } key)
                    {
                        key.Description = "The publish's msgId: a retry with the same key is answered with the first seq and not delivered again. A plain or a quoted string.";
                    }
                    else if (parameter is OpenApiParameter { Name: "msgId" } alias)
                    {
                        alias.Description = "v1's name for Idempotency-Key; when both are given they must be equal (else 400).";
                    }
                }

                return Task.CompletedTask;
            });
        });
}
