/**
 * Percentiles from explicit-bucket histograms, and merging histograms.
 *
 * A histogram here is `bounds` (finite upper bounds, ascending) and
 * `counts` (`bounds.length + 1` entries, the last one the +Inf bucket):
 * `counts[i]` counts values in (bounds[i-1], bounds[i]].
 *
 * @module
 */

/** Explicit-bucket histogram: `counts.length === bounds.length + 1`. */
export interface Histogram {
  bounds: readonly number[];
  counts: readonly number[];
}

/** Smallest and largest observed values, when the sender reported them. */
export interface Extremes {
  min?: number | null;
  max?: number | null;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) by linear interpolation inside the bucket
 * holding rank q·N (N = the sum of counts), or null when N is 0.
 *
 * With cumulative count C before bucket i and c = counts[i] > 0, bucket i
 * is the first with C + c ≥ q·N, and the result is
 *
 *     lower + (upper - lower) · (q·N - C) / c
 *
 * Edges: bucket i spans (bounds[i-1], bounds[i]]; the first bucket's lower
 * edge is `min` when known, else 0; the +Inf bucket's upper edge is `max`
 * when known, else the last finite bound (no finite bound: the lower edge).
 * A known `min`/`max` also narrows any bucket it falls inside, so the
 * result always lies in [min, max].
 *
 * Error bound: the value of rank q·N lies in that same bucket, so the
 * result is off by at most the bucket's width (upper − lower, after the
 * narrowing). The one unbounded case is the +Inf bucket with unknown max:
 * the true value can be anywhere above the last bound, and the last bound
 * is reported (a lower bound of the truth).
 *
 *     percentile([10, 20, 50], [10, 20, 10, 0], 0.5); // 15
 */
export function percentile(
  bounds: readonly number[],
  counts: readonly number[],
  q: number,
  extremes: Extremes = {},
): number | null {
  let total = 0;
  for (const c of counts) if (c > 0) total += c;
  if (!(total > 0)) return null;
  const rank = Math.min(1, Math.max(0, q)) * total;
  const min = finiteOrNull(extremes.min);
  const max = finiteOrNull(extremes.max);
  const last = counts.length - 1;
  let before = 0;
  let lastFilled = -1;
  for (let i = 0; i <= last; i++) {
    const c = counts[i]!;
    if (!(c > 0)) continue;
    lastFilled = i;
    if (before + c >= rank) {
      return interpolate(bucketEdges(bounds, i, min, max), (rank - before) / c);
    }
    before += c;
  }
  // Only rounding can bring us here: answer the top of the last bucket.
  return bucketEdges(bounds, lastFilled, min, max)[1];
}

/** Several quantiles of one histogram (same rules as `percentile`). */
export function percentiles(
  bounds: readonly number[],
  counts: readonly number[],
  qs: readonly number[],
  extremes: Extremes = {},
): (number | null)[] {
  return qs.map((q) => percentile(bounds, counts, q, extremes));
}

function interpolate([lower, upper]: [number, number], fraction: number) {
  return lower + (upper - lower) * Math.min(1, Math.max(0, fraction));
}

/** [lower, upper] of bucket `i`, narrowed by the known extremes. */
function bucketEdges(
  bounds: readonly number[],
  i: number,
  min: number | null,
  max: number | null,
): [number, number] {
  const k = bounds.length;
  let lower = i === 0 ? (min ?? Math.min(0, bounds[0] ?? 0)) : bounds[i - 1]!;
  let upper = i < k ? bounds[i]! : (max ?? bounds[k - 1] ?? lower);
  if (min !== null && min > lower) lower = min;
  if (max !== null && max < upper) upper = max;
  if (upper < lower) {
    // Extremes that contradict the buckets: trust the buckets' side.
    upper = lower;
  }
  return [lower, upper];
}

function finiteOrNull(x: number | null | undefined): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/**
 * Sums histograms into one.
 *
 * Identical bounds (the usual case) add bucket by bucket, exactly. When
 * bounds differ, the result uses the union of all bounds, and each source
 * bucket's count is spread over the result buckets it overlaps in
 * proportion to the overlap: the same uniform-within-bucket assumption
 * `percentile` makes, so a single histogram re-bucketed this way yields
 * the same percentiles, and merged percentiles keep the error bound of the
 * coarser source bucket. Counts may then be fractional. A source +Inf
 * bucket spans (last bound, max] when `max` is known; otherwise its count
 * goes to the result's +Inf bucket.
 *
 *     mergeHistograms([
 *       { bounds: [10], counts: [4, 0] },
 *       { bounds: [5, 10], counts: [1, 1, 0] },
 *     ]); // { bounds: [5, 10], counts: [3, 3, 0] }
 */
export function mergeHistograms(
  parts: readonly Histogram[],
  extremes: Extremes = {},
): { bounds: number[]; counts: number[] } {
  if (parts.length === 0) return { bounds: [], counts: [0] };
  const first = parts[0]!;
  if (parts.every((p) => sameBounds(p.bounds, first.bounds))) {
    const counts = new Array<number>(first.bounds.length + 1).fill(0);
    for (const p of parts) {
      for (let i = 0; i < counts.length; i++) counts[i]! += p.counts[i] ?? 0;
    }
    return { bounds: [...first.bounds], counts };
  }
  const union = [...new Set(parts.flatMap((p) => p.bounds))].sort((a, b) =>
    a - b
  );
  const counts = new Array<number>(union.length + 1).fill(0);
  const min = finiteOrNull(extremes.min);
  const max = finiteOrNull(extremes.max);
  for (const p of parts) {
    const k = p.bounds.length;
    for (let i = 0; i <= k; i++) {
      const c = p.counts[i] ?? 0;
      if (!(c > 0)) continue;
      if (i === k && max === null) {
        counts[union.length]! += c;
        continue;
      }
      const [lower, upper] = bucketEdges(p.bounds, i, min, max);
      spread(union, counts, lower, upper, c);
    }
  }
  return { bounds: union, counts };
}

/** Adds `c` spread uniformly over (lower, upper] to the union buckets. */
function spread(
  union: readonly number[],
  counts: number[],
  lower: number,
  upper: number,
  c: number,
): void {
  if (!(upper > lower)) {
    counts[bucketOf(union, upper)]! += c;
    return;
  }
  const width = upper - lower;
  for (let t = 0; t <= union.length; t++) {
    const tLower = t === 0 ? -Infinity : union[t - 1]!;
    const tUpper = t === union.length ? Infinity : union[t]!;
    const overlap = Math.min(upper, tUpper) - Math.max(lower, tLower);
    if (overlap > 0) counts[t]! += c * overlap / width;
  }
}

/** Index of the bucket (t-1, t] holding x; union.length for +Inf. */
function bucketOf(union: readonly number[], x: number): number {
  let t = 0;
  while (t < union.length && union[t]! < x) t++;
  return t;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
