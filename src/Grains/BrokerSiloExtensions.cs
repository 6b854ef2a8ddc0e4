using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Broker.Grains;

public static class BrokerSiloExtensions
{
    /// <summary>What every silo of the broker needs, whatever process hosts it.</summary>
    public static ISiloBuilder AddBrokerGrains(this ISiloBuilder silo)
    {
        silo.Services.TryAddSingleton(TimeProvider.System);
        return silo;
    }
}
