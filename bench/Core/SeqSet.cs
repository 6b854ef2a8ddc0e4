namespace Broker.Bench.Core;

/// <summary>The set of seqs one connection has seen in one room: finds duplicates and out-of-order frames.</summary>
public sealed class SeqSet
{
    private ulong[] _bits = new ulong[16];
    private long _last;

    public long Last => _last;

    /// <summary>Adds a seq; says whether it was a duplicate or arrived after a higher one.</summary>
    public (bool Duplicate, bool OutOfOrder) Add(long seq)
    {
        if (seq < 0)
        {
            return (false, true);
        }

        var word = seq >> 6;
        if (word >= _bits.Length)
        {
            Array.Resize(ref _bits, (int)Math.Max(word + 1, _bits.Length * 2L));
        }

        var mask = 1UL << (int)(seq & 63);
        if ((_bits[word] & mask) != 0)
        {
            return (true, false);
        }

        _bits[word] |= mask;
        var outOfOrder = seq < _last;
        if (seq > _last)
        {
            _last = seq;
        }

        return (false, outOfOrder);
    }
}
