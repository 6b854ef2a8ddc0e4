namespace Broker.Grains.Hosting;

/// <summary>
/// How a silo bounds the memory its activations take ("Silo:Memory" for the standalone silo,
/// "Broker:Embedded:Memory" for the embedded one). Percentages are of the memory the process
/// may use: the container's limit, DOTNET_GCHeapHardLimit, or else the machine's RAM — set one
/// of the first two in production, or the thresholds are far away. Usage is the GC's committed
/// memory, as Orleans measures it. In order of severity:
/// at <see cref="ShedAbovePercent"/> Orleans deactivates idle activations, least recently used
/// first, down to <see cref="ShedToPercent"/>; above <see cref="RefuseActivationsAbovePercent"/>
/// rooms and users are not activated (callers get unavailable) while existing ones keep
/// working; above <see cref="GatewayShedAbovePercent"/> the gateway refuses every request of
/// outside front-ends (cluster mode only; GatewayTooBusyException, unavailable).
/// </summary>
public sealed class SiloMemoryOptions
{
    public const double DefaultShedAbovePercent = 80;
    public const double DefaultShedToPercent = 70;
    public const double DefaultRefuseActivationsAbovePercent = 90;
    public const int DefaultGatewayShedAbovePercent = 95;
    public const int DefaultGatewayCpuShedAbovePercent = 100;

    /// <summary>How often memory is looked at, for shedding and for refusing activations.</summary>
    public static readonly TimeSpan PollingPeriod = TimeSpan.FromSeconds(1);

    /// <summary>Memory use at which idle activations are deactivated (Orleans' activation shedding); 100 turns shedding off.</summary>
    public double ShedAbovePercent { get; set; } = DefaultShedAbovePercent;

    /// <summary>Memory use that shedding brings the silo back to.</summary>
    public double ShedToPercent { get; set; } = DefaultShedToPercent;

    /// <summary>Memory use above which new room and user activations are refused (SiloOverloadedException); 100 never refuses.</summary>
    public double RefuseActivationsAbovePercent { get; set; } = DefaultRefuseActivationsAbovePercent;

    /// <summary>Memory use above which the gateway refuses requests from outside clients (Orleans' load shedding); 100 never does.</summary>
    public int GatewayShedAbovePercent { get; set; } = DefaultGatewayShedAbovePercent;

    /// <summary>
    /// CPU use above which the gateway refuses requests (Orleans' load shedding); 100 (the
    /// default) never does: a busy silo is not a reason to refuse front-ends' lease renewals,
    /// which would declare healthy front-ends lost.
    /// </summary>
    public int GatewayCpuShedAbovePercent { get; set; } = DefaultGatewayCpuShedAbovePercent;

    /// <summary>Problems with these settings, each a sentence naming the setting under <paramref name="section"/>.</summary>
    public IEnumerable<string> Validate(string section)
    {
        if (ShedAbovePercent is <= 0 or > 100)
        {
            yield return $"{section}:ShedAbovePercent must be above 0 and at most 100.";
        }

        if (ShedToPercent <= 0 || ShedToPercent >= ShedAbovePercent)
        {
            yield return $"{section}:ShedToPercent must be above 0 and below ShedAbovePercent.";
        }

        if (RefuseActivationsAbovePercent is <= 0 or > 100)
        {
            yield return $"{section}:RefuseActivationsAbovePercent must be above 0 and at most 100.";
        }

        if (GatewayShedAbovePercent is <= 0 or > 100 || GatewayCpuShedAbovePercent is <= 0 or > 100)
        {
            yield return $"{section}:GatewayShedAbovePercent and GatewayCpuShedAbovePercent must be 1 to 100.";
        }
    }
}
