/**
 * Exponential backoff with "equal jitter": attempt n waits between half and all of
 * min(max, initial × factor^n), so that clients cut off at the same moment do not all come back
 * at the same moment, and none waits less than half of its step.
 */
export class Backoff {
  /**
   * @param {{ initial?: number, max?: number, factor?: number, random?: () => number }} [options]
   */
  constructor({ initial = 250, max = 10_000, factor = 2, random = Math.random } = {}) {
    if (!(initial >= 0) || !(max >= initial) || !(factor >= 1)) {
      throw new RangeError('backoff: need 0 <= initial <= max and factor >= 1');
    }
    this.initial = initial;
    this.max = max;
    this.factor = factor;
    this.random = random;
    this.attempt = 0;
  }

  /** The delay (ms) before the next attempt; each call makes the following one longer. */
  next() {
    const step = Math.min(this.max, this.initial * this.factor ** this.attempt);
    this.attempt += 1;
    return step / 2 + this.random() * (step / 2);
  }

  /** After a success: the next failure starts from `initial` again. */
  reset() {
    this.attempt = 0;
  }
}
