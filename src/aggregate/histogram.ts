/**
 * Latency histograms as senders describe them, before they become a
 * `LatencyHistogram`: checks that reject impossible points, conversion of
 * exponential histograms to explicit buckets, and unit scaling.
 *
 * Field names follow OTLP so that decoded points can be passed as they are.
 * Arrays handed in are treated as immutable: results may share them.
 */

/** More buckets than this in one point is an attack, not a histogram. */
export const MAX_BUCKETS = 10_000;

/** The exponential scales OTLP allows. */
export const MIN_SCALE = -10;
export const MAX_SCALE = 20;

/** Start and end of a point, each split into exact microseconds + ns. */
export interface PointTimes {
  /** floor(startTimeUnixNano / 1000); 0 when the sender left it out. */
  startTimeUs: number;
  /** startTimeUnixNano % 1000. */
  startTimeExtraNs: number;
  /** floor(timeUnixNano / 1000). */
  timeUs: number;
  /** timeUnixNano % 1000. */
  timeExtraNs: number;
}

/** Values common to both histogram kinds, in the sender's unit. */
export interface HistogramSummary {
  count: number;
  /** null when the sender did not send one. */
  sum: number | null;
  min: number | null;
  max: number | null;
}

/** An explicit-bucket histogram: `bucketCounts.length` = bounds + 1. */
export interface ExplicitHistogramData extends HistogramSummary {
  explicitBounds: number[];
  bucketCounts: number[];
}

/** An exponential histogram: bucket index i covers (base^i, base^(i+1)]. */
export interface ExponentialHistogramData extends HistogramSummary {
  scale: number;
  zeroCount: number;
  zeroThreshold: number;
  positiveOffset: number;
  positiveCounts: number[];
  negativeOffset: number;
  negativeCounts: number[];
}

/** Why a point was rejected; also the last part of its counter name. */
export type HistogramProblem =
  | "too_many_buckets"
  | "bucket_layout"
  | "invalid_bounds"
  | "invalid_count"
  | "count_mismatch"
  | "invalid_sum"
  | "invalid_scale";

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Sum of counts, or -1 when one of them is not a non-negative integer. */
function sumCounts(counts: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (!isCount(c)) return -1;
    total += c;
  }
  return total;
}

/**
 * What is wrong with an explicit histogram, or null when it can be used.
 * A point with neither bounds nor bucket counts is valid (one +Inf bucket).
 */
export function checkExplicit(
  h: ExplicitHistogramData,
): HistogramProblem | null {
  const bounds = h.explicitBounds;
  const counts = h.bucketCounts;
  if (bounds.length > MAX_BUCKETS || counts.length > MAX_BUCKETS + 1) {
    return "too_many_buckets";
  }
  if (!isCount(h.count)) return "invalid_count";
  if (h.sum !== null && !Number.isFinite(h.sum)) return "invalid_sum";
  if (counts.length === 0) return bounds.length === 0 ? null : "bucket_layout";
  if (counts.length !== bounds.length + 1) return "bucket_layout";
  let previous = -Infinity;
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i]!;
    if (!(b > previous) || b === Infinity) return "invalid_bounds";
    previous = b;
  }
  const total = sumCounts(counts);
  if (total < 0) return "invalid_count";
  return total === h.count ? null : "count_mismatch";
}

/** What is wrong with an exponential histogram, or null. */
export function checkExponential(
  h: ExponentialHistogramData,
): HistogramProblem | null {
  if (h.positiveCounts.length + h.negativeCounts.length > MAX_BUCKETS) {
    return "too_many_buckets";
  }
  if (
    !Number.isInteger(h.scale) || h.scale < MIN_SCALE || h.scale > MAX_SCALE
  ) return "invalid_scale";
  if (
    !Number.isInteger(h.positiveOffset) || !Number.isInteger(h.negativeOffset)
  ) return "bucket_layout";
  if (!(h.zeroThreshold >= 0) || h.zeroThreshold === Infinity) {
    return "invalid_bounds";
  }
  if (!isCount(h.count) || !isCount(h.zeroCount)) return "invalid_count";
  if (h.sum !== null && !Number.isFinite(h.sum)) return "invalid_sum";
  const positive = sumCounts(h.positiveCounts);
  const negative = sumCounts(h.negativeCounts);
  if (positive < 0 || negative < 0) return "invalid_count";
  return h.zeroCount + positive + negative === h.count
    ? null
    : "count_mismatch";
}

/**
 * Explicit buckets holding exactly the counts of an exponential histogram,
 * bounds multiplied by `factor` (a unit conversion).
 *
 * One bucket per populated index, with upper bound base^(index+1) (negative
 * side: -base^index), the zero bucket with upper bound `zeroThreshold`, and an
 * empty +Inf bucket. The counts add up to `zeroCount` plus all bucket counts.
 */
export function exponentialToExplicit(
  h: ExponentialHistogramData,
  factor: number,
): { bounds: number[]; counts: number[] } {
  const bounds: number[] = [];
  const counts: number[] = [];
  const base = Math.pow(2, Math.pow(2, -h.scale));
  const push = (bound: number, count: number) => {
    const last = bounds.length - 1;
    if (last >= 0 && !(bound > bounds[last]!)) {
      // Only when the sender's zero threshold overlaps its buckets: those
      // values are below the previous bound, so they belong to its bucket.
      counts[last]! += count;
    } else {
      bounds.push(bound);
      counts.push(count);
    }
  };
  const neg = h.negativeCounts;
  for (let j = neg.length - 1; j >= 0; j--) {
    const c = neg[j]!;
    if (c > 0) push(-Math.pow(base, h.negativeOffset + j) * factor, c);
  }
  if (h.zeroCount > 0) push(h.zeroThreshold * factor, h.zeroCount);
  const pos = h.positiveCounts;
  for (let j = 0; j < pos.length; j++) {
    const c = pos[j]!;
    if (c > 0) push(Math.pow(base, h.positiveOffset + j + 1) * factor, c);
  }
  counts.push(0);
  return { bounds, counts };
}

/**
 * Bounds multiplied by `factor`, rounded to 15 significant digits so that
 * 0.075 s becomes 75 ms and not 75.00000000000001. Returns `bounds` itself
 * when `factor` is 1.
 */
export function scaleBounds(bounds: number[], factor: number): number[] {
  if (factor === 1) return bounds;
  const out = new Array<number>(bounds.length);
  for (let i = 0; i < bounds.length; i++) {
    out[i] = Number((bounds[i]! * factor).toPrecision(15));
  }
  return out;
}
