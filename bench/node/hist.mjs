// A latency histogram in microseconds: exact below 256 µs, then 128 buckets per power of two
// (each bucket at most 1/128 = 0.8% wide), up to 2^31 µs (~36 min). Mergeable by adding counts,
// so each worker thread keeps its own and the main thread adds them up.

const LINEAR = 256;
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128
const MAX_EXP = 31;
export const BUCKETS = LINEAR + (MAX_EXP - 8) * SUB; // 3,200

export function bucketOf(us) {
  let v = us < 0 ? 0 : Math.floor(us);
  if (v < LINEAR) return v;
  if (v >= 2 ** MAX_EXP) v = 2 ** MAX_EXP - 1;
  const k = 31 - Math.clz32(v); // 8..30
  const shift = k - SUB_BITS;
  return LINEAR + (k - 8) * SUB + ((v >>> shift) - SUB);
}

/** The middle of a bucket's range, in µs. */
export function valueOf(index) {
  if (index < LINEAR) return index;
  const i = index - LINEAR;
  const k = 8 + Math.floor(i / SUB);
  const m = SUB + (i % SUB);
  const shift = k - SUB_BITS;
  return (m << shift) + ((1 << shift) - 1) / 2;
}

export class Histogram {
  constructor() {
    this.counts = new Uint32Array(BUCKETS);
    this.count = 0;
    this.max = 0;
    this.sum = 0;
  }

  record(us) {
    this.counts[bucketOf(us)]++;
    this.count++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  /** Plain object for postMessage (the Uint32Array is copied by the structured clone). */
  toJSON() {
    return { counts: this.counts, count: this.count, max: this.max, sum: this.sum };
  }

  static from(o) {
    const h = new Histogram();
    if (o) h.add(o);
    return h;
  }

  add(o) {
    const c = o.counts;
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += c[i];
    this.count += o.count;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  /** The value at quantile q (0..1), in µs; the exact maximum for q = 1. */
  quantile(q) {
    if (this.count === 0) return null;
    if (q >= 1) return this.max;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  /** { count, p50, p90, p99, p999, max, mean } in ms (null where there is nothing). */
  summary() {
    const ms = (us) => (us === null ? null : Math.round(us) / 1000);
    return {
      count: this.count,
      p50: ms(this.quantile(0.5)),
      p90: ms(this.quantile(0.9)),
      p99: ms(this.quantile(0.99)),
      p999: ms(this.quantile(0.999)),
      max: ms(this.count ? this.max : null),
      mean: ms(this.count ? this.sum / this.count : null),
    };
  }
}
