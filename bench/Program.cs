using System.CommandLine;
using System.Globalization;
using System.Net;
using Broker.Bench.Core;
using Broker.Bench.Reporting;
using Broker.Bench.Workloads;

namespace Broker.Bench;

/// <summary>The command line: a thin layer over the workload runners (see Workloads/).</summary>
public static class Program
{
    public static Task<int> Main(string[] args) => BuildCommand().Parse(args).InvokeAsync();

    public static RootCommand BuildCommand()
    {
        var root = new RootCommand(
            "broker-bench: load tool for servers speaking the broker's WebSocket protocol v1 (ours or the Node baseline). "
            + "Progress goes to stderr once a second, the result table (or --json) to stdout.");
        root.Subcommands.Add(Fanout());
        root.Subcommands.Add(Echo());
        root.Subcommands.Add(Conns());
        root.Subcommands.Add(Crossnode());
        root.Subcommands.Add(Compare());
        return root;
    }

    private static Command Fanout()
    {
        var c = new Common("fanout", "R rooms × M members over the URLs, P publishers at a fixed open-loop aggregate rate; latency, order, losses, CPU per delivery.");
        var urls = c.Urls("--url", "Front-end URL (repeat for several front-ends; members are spread round-robin), e.g. ws://127.0.0.1:8001", required: true);
        var publisherUrls = c.Urls("--publisher-url", "Put publishers on extra connections to these URLs instead of choosing them among the members", required: false);
        var rooms = c.Int("--rooms", 10, "Rooms");
        var members = c.Int("--members", 100, "Members per room");
        var publishers = c.Int("--publishers", 10, "Publishers (publisher p publishes to room p mod R)");
        var rate = c.Text("--rate", "500/s", "Aggregate publishes per second, e.g. 500 or 500/s");
        var payload = c.Int("--payload", 100, "Bytes of data per message (a JSON object with the send timestamp, padded)");
        var duration = c.Text("--duration", "20s", "Measured time, e.g. 20, 20s, 2m");
        var warmup = c.Text("--warmup", "3s", "Publishing before the measurement starts");
        var drain = c.Text("--drain", "5s", "Longest wait for outstanding deliveries after the last publish");
        var sources = c.SourceIps();
        return c.Action(async (pr, ct) =>
        {
            var result = await FanoutRunner.RunAsync(
                new FanoutOptions
                {
                    Urls = ParseUrls(pr.GetValue(urls)),
                    PublisherUrls = ParseUrls(pr.GetValue(publisherUrls)),
                    Rooms = pr.GetValue(rooms),
                    Members = pr.GetValue(members),
                    Publishers = pr.GetValue(publishers),
                    Rate = ParseRate(pr.GetValue(rate)!),
                    Payload = pr.GetValue(payload),
                    Duration = ParseDuration(pr.GetValue(duration)!),
                    Warmup = ParseDuration(pr.GetValue(warmup)!),
                    Drain = ParseDuration(pr.GetValue(drain)!),
                    Namespace = c.Namespace(pr),
                    Pids = c.Pids(pr),
                    SourceIps = ParseIps(pr.GetValue(sources)),
                    Progress = c.Progress(pr),
                },
                ct);
            return c.Print(pr, result, Tables.Render(result), result.Cpu.Warning);
        });
    }

    private static Command Echo()
    {
        var c = new Common("echo", "N connections in a closed loop of echo (or ping) round trips; round trips/s, latency, CPU per round trip.");
        var urls = c.Urls("--url", "Front-end URL (repeat for several; connections are spread round-robin)", required: true);
        var connections = c.Int("--connections", 100, "Connections");
        var kind = new Option<string>("--kind") { Description = "echo ({\"type\":\"echo\",\"data\"}) or ping ({\"type\":\"ping\"})", DefaultValueFactory = _ => "echo" };
        kind.AcceptOnlyFromAmong("echo", "ping");
        c.Command.Options.Add(kind);
        var payload = c.Int("--payload", 16, "Length of the echoed data string");
        var duration = c.Text("--duration", "20s", "Measured time");
        var warmup = c.Text("--warmup", "2s", "Round trips before the measurement starts");
        var sources = c.SourceIps();
        return c.Action(async (pr, ct) =>
        {
            var result = await EchoRunner.RunAsync(
                new EchoOptions
                {
                    Urls = ParseUrls(pr.GetValue(urls)),
                    Connections = pr.GetValue(connections),
                    Kind = pr.GetValue(kind)!,
                    Payload = pr.GetValue(payload),
                    Duration = ParseDuration(pr.GetValue(duration)!),
                    Warmup = ParseDuration(pr.GetValue(warmup)!),
                    Namespace = c.Namespace(pr),
                    Pids = c.Pids(pr),
                    SourceIps = ParseIps(pr.GetValue(sources)),
                    Progress = c.Progress(pr),
                },
                ct);
            return c.Print(pr, result, Tables.Render(result), result.Cpu.Warning);
        });
    }

    private static Command Conns()
    {
        var c = new Common("conns", "Open N idle connections at a rate, hold them; connect latency and server RSS per connection.");
        var urls = c.Urls("--url", "Front-end URL (repeat for several; connections are spread round-robin)", required: true);
        var count = c.Int("--count", 1000, "Connections to open (this process may hold ~19.9k file descriptors)");
        var rate = c.Text("--rate", "1000/s", "New connections per second");
        var hold = c.Text("--hold", "10s", "How long to hold them after the last one opened");
        var sources = c.SourceIps();
        var anonymous = new Option<bool>("--anonymous") { Description = "Connect without ?user= (the server makes up each connection's id)" };
        c.Command.Options.Add(anonymous);
        return c.Action(async (pr, ct) =>
        {
            var result = await ConnsRunner.RunAsync(
                new ConnsOptions
                {
                    Urls = ParseUrls(pr.GetValue(urls)),
                    Count = pr.GetValue(count),
                    Rate = ParseRate(pr.GetValue(rate)!),
                    Hold = ParseDuration(pr.GetValue(hold)!),
                    Namespace = c.Namespace(pr),
                    Pids = c.Pids(pr),
                    SourceIps = ParseIps(pr.GetValue(sources)),
                    Anonymous = pr.GetValue(anonymous),
                    Progress = c.Progress(pr),
                },
                ct);
            return c.Print(pr, result, Tables.Render(result), result.Cpu.Warning);
        });
    }

    private static Command Crossnode()
    {
        var c = new Common("crossnode", "Members on one front-end; publishers on the same one, then on another: the latency the extra hop adds.");
        var publisherUrl = c.Urls("--publisher-url", "Front-end of the publishers in the cross-node run", required: true);
        var memberUrl = c.Urls("--member-url", "Front-end of every member", required: true);
        var sameNodeUrl = c.Urls("--same-node-url", "Front-end of the publishers in the same-node run (default: --member-url)", required: false);
        var rooms = c.Int("--rooms", 10, "Rooms");
        var members = c.Int("--members", 100, "Members per room");
        var publishers = c.Int("--publishers", 10, "Publishers");
        var rate = c.Text("--rate", "100/s", "Aggregate publishes per second (100/s × 101 receivers ≈ 10k deliveries/s)");
        var payload = c.Int("--payload", 100, "Bytes of data per message");
        var duration = c.Text("--duration", "20s", "Measured time of each of the two runs");
        var warmup = c.Text("--warmup", "3s", "Warm-up of each run");
        return c.Action(async (pr, ct) =>
        {
            var same = ParseUrls(pr.GetValue(sameNodeUrl));
            var result = await CrossnodeRunner.RunAsync(
                new CrossnodeOptions
                {
                    PublisherUrl = ParseUrls(pr.GetValue(publisherUrl))[0],
                    MemberUrl = ParseUrls(pr.GetValue(memberUrl))[0],
                    SameNodeUrl = same.Count > 0 ? same[0] : null,
                    Rooms = pr.GetValue(rooms),
                    Members = pr.GetValue(members),
                    Publishers = pr.GetValue(publishers),
                    Rate = ParseRate(pr.GetValue(rate)!),
                    Payload = pr.GetValue(payload),
                    Duration = ParseDuration(pr.GetValue(duration)!),
                    Warmup = ParseDuration(pr.GetValue(warmup)!),
                    Namespace = c.Namespace(pr),
                    Pids = c.Pids(pr),
                    Progress = c.Progress(pr),
                },
                ct);
            var warning = result.SameNode.Cpu.Warning ?? result.CrossNode.Cpu.Warning;
            return c.Print(pr, result, Tables.Render(result), warning);
        });
    }

    private static Command Compare()
    {
        var command = new Command("compare", "Side-by-side table of two result directories (fanout.json, echo.json, conns.json, crossnode.json written with --json), with ratios.");
        var ours = new Option<string>("--ours") { Description = "Directory of our results", Required = true };
        var baseline = new Option<string>("--baseline") { Description = "Directory of the baseline's results", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the rows as JSON" };
        command.Options.Add(ours);
        command.Options.Add(baseline);
        command.Options.Add(json);
        command.SetAction(pr =>
        {
            var rows = Comparison.Build(pr.GetValue(ours)!, pr.GetValue(baseline)!);
            pr.InvocationConfiguration.Output.Write(pr.GetValue(json) ? Tables.ToJson(rows) + "\n" : Comparison.Render(rows));
            return rows.Count > 0 ? 0 : 1;
        });
        return command;
    }

    internal static IReadOnlyList<Uri> ParseUrls(string[]? values) =>
        [.. (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(v =>
            Uri.TryCreate(v, UriKind.Absolute, out var u) && u.Scheme is "ws" or "http"
                ? u
                : throw new BenchException($"\"{v}\" is not a ws:// URL."))];

    internal static double ParseRate(string value)
    {
        var v = value.Trim();
        if (v.EndsWith("/s", StringComparison.Ordinal))
        {
            v = v[..^2];
        }

        return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) && rate > 0
            ? rate
            : throw new BenchException($"\"{value}\" is not a rate; write e.g. 500 or 500/s.");
    }

    internal static TimeSpan ParseDuration(string value)
    {
        var v = value.Trim();
        var (number, unit) = v.EndsWith("ms", StringComparison.Ordinal) ? (v[..^2], 0.001)
            : v.EndsWith('s') ? (v[..^1], 1.0)
            : v.EndsWith('m') ? (v[..^1], 60.0)
            : (v, 1.0);
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? TimeSpan.FromSeconds(n * unit)
            : throw new BenchException($"\"{value}\" is not a duration; write e.g. 20, 20s, 500ms or 2m.");
    }

    internal static IReadOnlyList<IPAddress> ParseIps(string? value) =>
        [.. (value ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
            IPAddress.TryParse(s, out var ip) ? ip : throw new BenchException($"\"{s}\" is not an IP address."))];

    /// <summary>Options every workload verb has, and the plumbing around its action.</summary>
    private sealed class Common
    {
        private readonly Option<string> _pids = new("--pids") { Description = "Comma-separated PIDs of the server processes (Redis included): CPU and RSS are read from /proc" };
        private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object instead of the table" };
        private readonly Option<string> _jsonOut = new("--json-out") { Description = "Also write the JSON object to this file (the table still goes to stdout)" };
        private readonly Option<bool> _quiet = new("--quiet", "-q") { Description = "No progress line on stderr" };
        private readonly Option<string> _namespace = new("--namespace") { Description = "Namespace (the URL's path when it has none)", DefaultValueFactory = _ => "chat" };

        public Common(string name, string description)
        {
            Command = new Command(name, description);
        }

        public Command Command { get; }

        public Option<string[]> Urls(string name, string description, bool required)
        {
            var o = new Option<string[]>(name) { Description = description, Required = required, Arity = required ? ArgumentArity.OneOrMore : ArgumentArity.ZeroOrMore };
            Command.Options.Add(o);
            return o;
        }

        public Option<int> Int(string name, int defaultValue, string description)
        {
            var o = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
            Command.Options.Add(o);
            return o;
        }

        public Option<string> Text(string name, string defaultValue, string description)
        {
            var o = new Option<string>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
            Command.Options.Add(o);
            return o;
        }

        public Option<string> SourceIps()
        {
            var o = new Option<string>("--source-ips") { Description = "Comma-separated 127.0.0.x addresses to bind client sockets to, round-robin (more than one address's ephemeral ports)" };
            Command.Options.Add(o);
            return o;
        }

        public IReadOnlyList<int> Pids(ParseResult pr) =>
            [.. (pr.GetValue(_pids) ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
                int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : throw new BenchException($"\"{s}\" is not a PID."))];

        public string Namespace(ParseResult pr) => pr.GetValue(_namespace) ?? "chat";

        public TextWriter? Progress(ParseResult pr) => pr.GetValue(_quiet) ? null : pr.InvocationConfiguration.Error;

        public int Print<T>(ParseResult pr, T result, string table, string? warning)
        {
            var json = Tables.ToJson(result) + "\n";
            pr.InvocationConfiguration.Output.Write(pr.GetValue(_json) ? json : table);
            if (pr.GetValue(_jsonOut) is { Length: > 0 } path)
            {
                File.WriteAllText(path, json);
            }

            if (warning is not null)
            {
                pr.InvocationConfiguration.Error.WriteLine(warning);
            }

            return 0;
        }

        public Command Action(Func<ParseResult, CancellationToken, Task<int>> action)
        {
            Command.Options.Add(_pids);
            Command.Options.Add(_namespace);
            Command.Options.Add(_json);
            Command.Options.Add(_jsonOut);
            Command.Options.Add(_quiet);
            Command.SetAction(async (pr, ct) =>
            {
                try
                {
                    return await action(pr, ct);
                }
                catch (BenchException ex)
                {
                    pr.InvocationConfiguration.Error.WriteLine($"broker-bench {Command.Name}: {ex.Message}");
                    return 2;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    pr.InvocationConfiguration.Error.WriteLine($"broker-bench {Command.Name}: cancelled.");
                    return 130;
                }
            });
            return Command;
        }
    }
}
