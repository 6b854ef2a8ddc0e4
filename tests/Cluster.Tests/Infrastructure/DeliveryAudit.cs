using System.Globalization;
using System.Text;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// Accounts for every acked message at every member of a room, over all the member's
/// connections (live frames and replayed ones alike), in the order the member saw them.
/// </summary>
public sealed class DeliveryAudit
{
    private readonly StringBuilder _report = new();
    private readonly List<string> _problems = [];

    /// <summary>Acked messages a member never saw.</summary>
    public int Lost { get; private set; }

    /// <summary>Messages a member saw more than once (the same seq, or the same msgId under two seqs).</summary>
    public int Duplicated { get; private set; }

    /// <summary>Messages a member saw after one with a higher seq.</summary>
    public int OutOfOrder { get; private set; }

    /// <summary>Messages seen that no ack accounts for (a seq never acked, or another msgId's seq), and epoch changes.</summary>
    public int Unexpected { get; private set; }

    public int Members { get; private set; }

    public int AckedMessages { get; private set; }

    public IReadOnlyList<string> Problems => _problems;

    public string Report => _report.ToString();

    public bool Clean => Lost == 0 && Duplicated == 0 && OutOfOrder == 0 && Unexpected == 0 && _problems.Count == 0;

    public string Summary =>
        $"{AckedMessages} acked messages, {Members} member×room accounts: lost = {Lost}, duplicated = {Duplicated}, " +
        $"out of order = {OutOfOrder}, unexpected = {Unexpected}";

    /// <summary>Waits until every member's current connection saw a message with the room's highest acked seq (bounded); lists who did not.</summary>
    public static async Task<List<string>> WaitForLastAckedAsync(
        IEnumerable<RecoveringClient> members, IReadOnlyDictionary<string, long> lastAcked, TimeSpan timeout)
    {
        var missing = new List<string>();
        var deadline = DateTime.UtcNow + timeout;
        foreach (var member in members)
        {
            foreach (var room in member.Rooms)
            {
                if (!lastAcked.TryGetValue(room, out var last))
                {
                    continue;
                }

                var left = deadline - DateTime.UtcNow;
                try
                {
                    await member.Current.WaitForAsync(
                        f => f.Type == "message" && f.Json.GetProperty("room").GetString() == room && f.Seq >= last,
                        left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1),
                        $"seq {last} in {room}");
                }
                catch (TimeoutException)
                {
                    missing.Add($"{member.User} ({member.Current.Node}, {(member.Current.IsOpen ? "open" : "closed")}) in {room}: last acked seq {last} not seen within {timeout}");
                }
            }
        }

        return missing;
    }

    /// <summary>Audits each member of each room against the acks of that room's publishers.</summary>
    public static DeliveryAudit Of(IEnumerable<RecoveringClient> members, IEnumerable<RetryingPublisher> publishers)
    {
        var audit = new DeliveryAudit();
        var byRoom = publishers.GroupBy(p => p.Room).ToDictionary(g => g.Key, g => g.SelectMany(p => p.Acks).ToList());

        // The acks themselves: one seq per msgId, one msgId per seq.
        var msgIdOfSeq = new Dictionary<string, Dictionary<long, string>>();
        foreach (var (room, acks) in byRoom)
        {
            audit.AckedMessages += acks.Count;
            var map = msgIdOfSeq[room] = [];
            foreach (var ack in acks)
            {
                if (map.TryGetValue(ack.Seq, out var other) && other != ack.MsgId)
                {
                    audit._problems.Add($"{room}: seq {ack.Seq} acked to two msgIds, {other} and {ack.MsgId}");
                }

                map[ack.Seq] = ack.MsgId;
            }

            var seqs = acks.Select(a => a.Seq).Order().ToList();
            var holes = seqs.Count == 0 ? 0 : (int)(seqs[^1] - seqs[0] + 1 - seqs.Distinct().Count());
            audit._report.AppendLine(CultureInfo.InvariantCulture,
                $"  {room}: {acks.Count} acked, seq {(seqs.Count == 0 ? "-" : $"{seqs[0]}..{seqs[^1]}")}, {holes} seqs in that range never acked");
        }

        foreach (var member in members)
        {
            foreach (var room in member.Rooms)
            {
                if (!msgIdOfSeq.TryGetValue(room, out var acked))
                {
                    continue;
                }

                audit.Members++;
                var seen = member.Seen(room);
                var seqs = seen.Select(m => m.Seq).ToList();
                var seenSet = seqs.ToHashSet();
                var lost = acked.Keys.Where(s => !seenSet.Contains(s)).Order().ToList();
                var dupSeqs = seqs.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => (g.Key, g.Count())).ToList();
                var dupData = seen.GroupBy(m => m.DataString).Where(g => g.Select(m => m.Seq).Distinct().Count() > 1).Select(g => g.Key).ToList();
                var outOfOrder = seqs.Zip(seqs.Skip(1)).Where(p => p.Second < p.First).ToList();
                var unexpected = seen.Where(m => !acked.TryGetValue(m.Seq, out var id) || id != m.DataString).ToList();
                var epochs = seen.Select(m => m.Json.GetProperty("epoch").GetString()).Distinct().ToList();
                var epochChanges = epochs.Count(e => e != member.FirstEpoch(room));

                audit.Lost += lost.Count;
                audit.Duplicated += dupSeqs.Sum(d => d.Item2 - 1) + dupData.Count;
                audit.OutOfOrder += outOfOrder.Count;
                audit.Unexpected += unexpected.Count + epochChanges;

                var perConnection = string.Join(" + ", member.Connections.Select(c => $"{c.Messages(room).Count}@{c.Node}"));
                var line = $"  {member.User} in {room}: saw {seen.Count} ({perConnection}); lost {lost.Count}, dup {dupSeqs.Sum(d => d.Item2 - 1) + dupData.Count}, " +
                           $"ooo {outOfOrder.Count}, unexpected {unexpected.Count}, epochs {epochs.Count}";
                audit._report.AppendLine(line);
                if (lost.Count > 0)
                {
                    audit._problems.Add($"{member.User} in {room}: lost acked seqs {Ranges(lost)}");
                }

                if (dupSeqs.Count > 0 || dupData.Count > 0)
                {
                    audit._problems.Add($"{member.User} in {room}: duplicated seqs {Ranges([.. dupSeqs.Select(d => d.Key)])}, msgIds under two seqs: {string.Join(",", dupData.Take(10))}");
                }

                if (outOfOrder.Count > 0)
                {
                    audit._problems.Add($"{member.User} in {room}: out of order: {string.Join(", ", outOfOrder.Take(10).Select(p => $"{p.Second} after {p.First}"))}");
                }

                if (unexpected.Count > 0)
                {
                    audit._problems.Add($"{member.User} in {room}: seen but not matching an ack: {string.Join(", ", unexpected.Take(10).Select(m => $"seq {m.Seq} '{m.DataString}'"))}");
                }

                if (epochChanges > 0)
                {
                    audit._problems.Add($"{member.User} in {room}: epoch changed ({string.Join(", ", epochs)}; first {member.FirstEpoch(room)})");
                }
            }
        }

        return audit;
    }

    /// <summary>"3..7, 9" for a sorted list of seqs.</summary>
    private static string Ranges(IReadOnlyList<long> seqs)
    {
        var parts = new List<string>();
        for (var i = 0; i < seqs.Count;)
        {
            var j = i;
            while (j + 1 < seqs.Count && seqs[j + 1] == seqs[j] + 1)
            {
                j++;
            }

            parts.Add(i == j ? seqs[i].ToString(CultureInfo.InvariantCulture) : $"{seqs[i]}..{seqs[j]}");
            i = j + 1;
        }

        return string.Join(", ", parts.Take(20)) + (parts.Count > 20 ? " …" : string.Empty);
    }
}
