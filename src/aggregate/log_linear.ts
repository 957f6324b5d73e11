/**
 * A log-linear histogram (HdrHistogram-like): every power of two is split
 * into `2^subBucketBits` equal sub-buckets, so a bucket's width is at most
 * 1/2^subBucketBits of its lower edge. With the default 5 bits (32
 * sub-buckets) the width is at most 3.125 % of any value in the bucket, and
 * the bucket's midpoint is within 1.6 % of every value in it.
 *
 * Buckets are upper-inclusive like OTLP explicit buckets: a bucket covers
 * (lower, upper]. Only populated buckets take memory; `toExplicit` turns
 * them into explicit bounds and counts (see `LatencyHistogram`) with the
 * empty gaps between them as zero-count buckets, so a reader that
 * interpolates inside buckets (`percentile`) keeps the error bound.
 *
 * @example
 * ```ts
 * const h = new LogLinearHistogram();
 * for (const ns of [50_100_000, 50_300_000, 51_000_000]) h.record(ns);
 * const { boundsMs, counts } = h.toExplicit(1e-6); // ns → ms
 * ```
 *
 * @module
 */

/** Default sub-bucket bits: 32 sub-buckets per power of two, ≤ 1.6 % error at the midpoint. */
export const DEFAULT_SUB_BUCKET_BITS = 5;

/** Explicit buckets: `counts.length === bounds.length + 1`, the last one +Inf. */
export interface ExplicitBuckets {
  bounds: number[];
  counts: number[];
}

/** Index of the bucket holding values ≤ 0. */
const ZERO_BUCKET = Number.NEGATIVE_INFINITY;

export class LogLinearHistogram {
  readonly #subBuckets: number;
  readonly #buckets = new Map<number, number>();
  #count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = Number.NEGATIVE_INFINITY;

  constructor(options: { subBucketBits?: number } = {}) {
    const bits = options.subBucketBits ?? DEFAULT_SUB_BUCKET_BITS;
    if (!Number.isInteger(bits) || bits < 0 || bits > 10) {
      throw new RangeError(
        `LogLinearHistogram: subBucketBits must be an integer from 0 to 10, got ${bits}`,
      );
    }
    this.#subBuckets = 2 ** bits;
  }

  get count(): number {
    return this.#count;
  }
  get sum(): number {
    return this.#sum;
  }
  /** Smallest recorded value; null when empty. */
  get min(): number | null {
    return this.#count === 0 ? null : this.#min;
  }
  /** Largest recorded value; null when empty. */
  get max(): number | null {
    return this.#count === 0 ? null : this.#max;
  }
  /** Populated buckets. */
  get bucketCount(): number {
    return this.#buckets.size;
  }

  /** Adds `n` observations of `value` (non-finite values are ignored). */
  record(value: number, n = 1): void {
    if (!Number.isFinite(value) || !(n > 0)) return;
    const index = this.bucketIndex(value);
    this.#buckets.set(index, (this.#buckets.get(index) ?? 0) + n);
    this.#count += n;
    this.#sum += value * n;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  /** Adds every observation of `other` (same sub-bucket bits required). */
  merge(other: LogLinearHistogram): void {
    if (other.#subBuckets !== this.#subBuckets) {
      throw new RangeError(
        "LogLinearHistogram.merge: different sub-bucket counts",
      );
    }
    for (const [index, n] of other.#buckets) {
      this.#buckets.set(index, (this.#buckets.get(index) ?? 0) + n);
    }
    this.#count += other.#count;
    this.#sum += other.#sum;
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /**
   * The bucket holding `value`: lower < value ≤ upper. Values ≤ 0 share one
   * bucket, (-Inf, 0].
   */
  bucketIndex(value: number): number {
    if (!(value > 0)) return ZERO_BUCKET;
    const s = this.#subBuckets;
    let e = Math.floor(Math.log2(value));
    // Math.log2 can be off by one ulp around powers of two.
    if (2 ** e > value) e--;
    else if (2 ** (e + 1) <= value) e++;
    // value in [2^e, 2^(e+1)); sub-bucket j covers (2^e(1+j/s), 2^e(1+(j+1)/s)].
    let j = Math.ceil((value / 2 ** e - 1) * s) - 1;
    // Floating-point rounding can put it one bucket off either way.
    if (j >= 0 && value <= (2 ** e) * (1 + j / s)) j--;
    else if (j < s - 1 && value > (2 ** e) * (1 + (j + 1) / s)) j++;
    if (j < 0) {
      // value is exactly 2^e: the last sub-bucket of the power below.
      e--;
      j = s - 1;
    } else if (j >= s) {
      j = s - 1;
    }
    return e * s + j;
  }

  /** [lower, upper] of a bucket index (see `bucketIndex`). */
  bucketEdges(index: number): [number, number] {
    if (index === ZERO_BUCKET) return [Number.NEGATIVE_INFINITY, 0];
    const s = this.#subBuckets;
    const e = Math.floor(index / s);
    const j = index - e * s;
    const base = 2 ** e;
    return [base * (1 + j / s), base * (1 + (j + 1) / s)];
  }

  /**
   * Explicit bounds and counts of the populated buckets, each bound
   * multiplied by `scale` (e.g. 1e-6 for ns → ms). Between two populated
   * buckets that do not touch, one zero-count bucket covers the gap; the
   * first bucket (up to the lowest populated bucket's lower edge) and the
   * +Inf bucket are zero.
   */
  toExplicit(scale = 1): ExplicitBuckets {
    const indexes = [...this.#buckets.keys()].sort((a, b) => a - b);
    const bounds: number[] = [];
    const counts: number[] = [];
    let previousUpper: number | undefined;
    for (const index of indexes) {
      const n = this.#buckets.get(index)!;
      const [lower, upper] = this.bucketEdges(index);
      if (index === ZERO_BUCKET) {
        bounds.push(0);
        counts.push(n);
        previousUpper = 0;
        continue;
      }
      if (previousUpper === undefined) {
        bounds.push(lower * scale);
        counts.push(0);
      } else if (previousUpper !== lower) {
        bounds.push(lower * scale);
        counts.push(0);
      }
      bounds.push(upper * scale);
      counts.push(n);
      previousUpper = upper;
    }
    counts.push(0); // +Inf
    return { bounds, counts };
  }
}
