/**
 * Cumulative → delta for histogram series.
 *
 * A cumulative point holds everything since the series' start time. For each
 * series (the caller's key) the tracker remembers the previous point and
 * returns the difference. Rules:
 *
 * - First point of a series: if it started at or after `freshAfterUs` (the
 *   series began while we were running) it is returned whole; otherwise it is
 *   only remembered as a baseline (`<prefix>cumulative_baseline`).
 * - Start time changed, or a count went down: the series restarted; the point
 *   is returned whole (`<prefix>cumulative_reset`).
 * - Bucket layout changed (bounds, scale up, zero threshold) with the same
 *   start: nothing can be subtracted; the point becomes the new baseline
 *   (`<prefix>cumulative_layout_changed`).
 * - Older than the previous point (a late retry, or from before a restart):
 *   ignored (`<prefix>cumulative_out_of_order`).
 * - Derived deltas have min and max null: the sender's are over the series.
 *
 * Each batch can be undone (`takeUndo` after it, `undo` if what it produced
 * could not be stored): its series go back to their state before the batch,
 * so a retry of the same export yields the same deltas instead of nothing.
 *
 * The number of series is bounded; the least recently used ones are evicted
 * (`<prefix>series_evicted`). A series seen again after eviction must not be
 * mistaken for a new one, so `freshAfterUs` moves up to the last time of any
 * evicted series.
 */
import type { Counters } from "../model/counters.ts";
import type {
  ExplicitHistogramData,
  ExponentialHistogramData,
  PointTimes,
} from "./histogram.ts";

/** A delta (or whole point) ready to store, and where its window starts. */
export interface DeltaWindow<T> {
  data: T;
  /** Start of the window, Unix microseconds. */
  windowStartUs: number;
  /** True when the point was returned as it came (first point or reset). */
  whole: boolean;
}

export interface CumulativeTrackerOptions {
  counters: Counters;
  /** First points that started at or after this time are new series. */
  freshAfterUs: number;
  /** Most series remembered; default 100 000. */
  maxSeries?: number;
  /** Counter name prefix; default "otlp.metrics.". */
  counterPrefix?: string;
}

interface StateBase extends PointTimes {
  count: number;
  sum: number | null;
  /** Batch in which the entry was last moved to the end of the map. */
  epoch: number;
}

interface ExplicitState extends StateBase {
  exponential: false;
  bounds: number[];
  counts: number[];
}

interface ExponentialState extends StateBase {
  exponential: true;
  scale: number;
  zeroCount: number;
  zeroThreshold: number;
  positiveOffset: number;
  positiveCounts: number[];
  negativeOffset: number;
  negativeCounts: number[];
}

type SeriesState = ExplicitState | ExponentialState;

/** How to put back the series one batch changed; see `takeUndo`. */
export interface CumulativeUndo {
  epoch: number;
  /** Each series' state before the batch; null where there was none. */
  before: Map<string, SeriesState | null>;
}

function cloneState(s: SeriesState): SeriesState {
  return s.exponential
    ? {
      ...s,
      positiveCounts: s.positiveCounts.slice(),
      negativeCounts: s.negativeCounts.slice(),
    }
    : { ...s, counts: s.counts.slice() };
}

function sameStart(a: PointTimes, b: PointTimes): boolean {
  return a.startTimeUs === b.startTimeUs &&
    a.startTimeExtraNs === b.startTimeExtraNs;
}

function isOlder(p: PointTimes, prev: PointTimes): boolean {
  return p.timeUs < prev.timeUs ||
    (p.timeUs === prev.timeUs && p.timeExtraNs < prev.timeExtraNs);
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Subtracts previous bucket counts (at `prevScale`, downscaled by `shift`)
 * from a copy of the current ones. Null when a count would go negative or a
 * previous bucket has no place in the current range: the series restarted.
 */
function subtractExponential(
  current: readonly number[],
  offset: number,
  previous: readonly number[],
  previousOffset: number,
  shift: number,
): number[] | null {
  const out = current.slice();
  for (let j = 0; j < previous.length; j++) {
    const c = previous[j]!;
    if (c === 0) continue;
    const at = ((previousOffset + j) >> shift) - offset;
    if (at < 0 || at >= out.length) return null;
    const d = out[at]! - c;
    if (d < 0) return null;
    out[at] = d;
  }
  return out;
}

export class CumulativeTracker {
  readonly #series = new Map<string, SeriesState>();
  readonly #counters: Counters;
  readonly #maxSeries: number;
  readonly #prefix: string;
  #freshAfterUs: number;
  #epoch = 0;
  #before = new Map<string, SeriesState | null>();

  constructor(options: CumulativeTrackerOptions) {
    this.#counters = options.counters;
    this.#freshAfterUs = options.freshAfterUs;
    this.#maxSeries = options.maxSeries ?? 100_000;
    this.#prefix = options.counterPrefix ?? "otlp.metrics.";
  }

  /** Number of series remembered. */
  get size(): number {
    return this.#series.size;
  }

  /** Call once per export; recency is tracked per batch. */
  beginBatch(): void {
    this.#epoch++;
    this.#before = new Map();
  }

  /** What puts back the series the current batch changed. */
  takeUndo(): CumulativeUndo {
    return { epoch: this.#epoch, before: this.#before };
  }

  /**
   * Puts back the series of an earlier batch whose records were not stored.
   * A series a later batch has touched since keeps its newer state.
   */
  undo(undo: CumulativeUndo): void {
    for (const [key, before] of undo.before) {
      const now = this.#series.get(key);
      if (now !== undefined && now.epoch !== undo.epoch) continue;
      if (before === null) this.#series.delete(key);
      else this.#series.set(key, before);
    }
  }

  /** Keeps the series' state before this batch's first change to it. */
  #remember(key: string, prev: SeriesState | undefined): void {
    if (this.#before.has(key)) return;
    this.#before.set(key, prev === undefined ? null : cloneState(prev));
  }

  /** Forgets a series (the sender marked it as gone). */
  forget(key: string): void {
    const state = this.#series.get(key);
    if (state === undefined) return;
    this.#remember(key, state);
    this.#series.delete(key);
    this.#raiseFreshAfter(state);
  }

  /** The delta of an explicit-bucket cumulative point, or null. */
  explicit(
    key: string,
    p: ExplicitHistogramData & PointTimes,
  ): DeltaWindow<ExplicitHistogramData> | null {
    const prev = this.#series.get(key);
    this.#remember(key, prev);
    if (prev === undefined || prev.exponential) {
      if (prev !== undefined) this.#series.delete(key);
      const first = this.#first(p, p);
      this.#insert(key, this.#explicitState(p));
      return first;
    }
    this.#touch(key, prev);
    if (isOlder(p, prev)) return this.#outOfOrder();
    if (!sameStart(p, prev)) return this.#reset(prev, p, p);
    if (!sameNumbers(p.explicitBounds, prev.bounds)) {
      this.#updateExplicit(prev, p);
      this.#counters.add(this.#prefix + "cumulative_layout_changed");
      return null;
    }
    const count = p.count - prev.count;
    let counts: number[] | null = count < 0
      ? null
      : new Array(prev.counts.length);
    if (counts !== null) {
      const cur = p.bucketCounts;
      for (let i = 0; i < cur.length; i++) {
        const d = cur[i]! - prev.counts[i]!;
        if (d < 0) {
          counts = null;
          break;
        }
        counts[i] = d;
      }
    }
    if (counts === null) {
      this.#updateExplicit(prev, p);
      return this.#reset(prev, p, p, false);
    }
    const windowStartUs = prev.timeUs;
    const sum = p.sum !== null && prev.sum !== null ? p.sum - prev.sum : null;
    this.#updateExplicit(prev, p);
    return {
      data: {
        count,
        sum,
        min: null,
        max: null,
        explicitBounds: p.explicitBounds,
        bucketCounts: counts,
      },
      windowStartUs,
      whole: false,
    };
  }

  /** The delta of an exponential cumulative point, or null. */
  exponential(
    key: string,
    p: ExponentialHistogramData & PointTimes,
  ): DeltaWindow<ExponentialHistogramData> | null {
    const prev = this.#series.get(key);
    this.#remember(key, prev);
    if (prev === undefined || !prev.exponential) {
      if (prev !== undefined) this.#series.delete(key);
      const first = this.#first(p, p);
      this.#insert(key, this.#exponentialState(p));
      return first;
    }
    this.#touch(key, prev);
    if (isOlder(p, prev)) return this.#outOfOrder();
    if (!sameStart(p, prev)) return this.#reset(prev, p, p);
    if (p.scale > prev.scale || p.zeroThreshold !== prev.zeroThreshold) {
      this.#updateExponential(prev, p);
      this.#counters.add(this.#prefix + "cumulative_layout_changed");
      return null;
    }
    const shift = prev.scale - p.scale;
    const count = p.count - prev.count;
    const zeroCount = p.zeroCount - prev.zeroCount;
    const positive = count < 0 || zeroCount < 0 ? null : subtractExponential(
      p.positiveCounts,
      p.positiveOffset,
      prev.positiveCounts,
      prev.positiveOffset,
      shift,
    );
    const negative = positive === null ? null : subtractExponential(
      p.negativeCounts,
      p.negativeOffset,
      prev.negativeCounts,
      prev.negativeOffset,
      shift,
    );
    if (positive === null || negative === null) {
      this.#updateExponential(prev, p);
      return this.#reset(prev, p, p, false);
    }
    const windowStartUs = prev.timeUs;
    const sum = p.sum !== null && prev.sum !== null ? p.sum - prev.sum : null;
    this.#updateExponential(prev, p);
    return {
      data: {
        count,
        sum,
        min: null,
        max: null,
        scale: p.scale,
        zeroCount,
        zeroThreshold: p.zeroThreshold,
        positiveOffset: p.positiveOffset,
        positiveCounts: positive,
        negativeOffset: p.negativeOffset,
        negativeCounts: negative,
      },
      windowStartUs,
      whole: false,
    };
  }

  #first<T>(times: PointTimes, data: T): DeltaWindow<T> | null {
    if (times.startTimeUs >= this.#freshAfterUs) {
      return { data, windowStartUs: times.startTimeUs, whole: true };
    }
    this.#counters.add(this.#prefix + "cumulative_baseline");
    return null;
  }

  /**
   * The point as a fresh start. `update` false when the caller already
   * stored the new state.
   */
  #reset<T>(
    prev: SeriesState,
    times: PointTimes,
    data: T,
    update = true,
  ): DeltaWindow<T> {
    if (update) {
      if (prev.exponential) {
        this.#updateExponential(
          prev,
          data as ExponentialHistogramData & PointTimes,
        );
      } else {
        this.#updateExplicit(prev, data as ExplicitHistogramData & PointTimes);
      }
    }
    this.#counters.add(this.#prefix + "cumulative_reset");
    return { data, windowStartUs: times.startTimeUs, whole: true };
  }

  #outOfOrder(): null {
    this.#counters.add(this.#prefix + "cumulative_out_of_order");
    return null;
  }

  #explicitState(p: ExplicitHistogramData & PointTimes): ExplicitState {
    return {
      exponential: false,
      startTimeUs: p.startTimeUs,
      startTimeExtraNs: p.startTimeExtraNs,
      timeUs: p.timeUs,
      timeExtraNs: p.timeExtraNs,
      count: p.count,
      sum: p.sum,
      epoch: this.#epoch,
      bounds: p.explicitBounds,
      counts: p.bucketCounts.slice(),
    };
  }

  #updateExplicit(s: ExplicitState, p: ExplicitHistogramData & PointTimes) {
    s.startTimeUs = p.startTimeUs;
    s.startTimeExtraNs = p.startTimeExtraNs;
    s.timeUs = p.timeUs;
    s.timeExtraNs = p.timeExtraNs;
    s.count = p.count;
    s.sum = p.sum;
    s.bounds = p.explicitBounds;
    // Copied into the series' own array: nothing emitted aliases state, and
    // long-lived state does not pin each export's arrays.
    const from = p.bucketCounts;
    if (s.counts.length === from.length) {
      for (let i = 0; i < from.length; i++) s.counts[i] = from[i]!;
    } else {
      s.counts = from.slice();
    }
  }

  #exponentialState(
    p: ExponentialHistogramData & PointTimes,
  ): ExponentialState {
    return {
      exponential: true,
      startTimeUs: p.startTimeUs,
      startTimeExtraNs: p.startTimeExtraNs,
      timeUs: p.timeUs,
      timeExtraNs: p.timeExtraNs,
      count: p.count,
      sum: p.sum,
      epoch: this.#epoch,
      scale: p.scale,
      zeroCount: p.zeroCount,
      zeroThreshold: p.zeroThreshold,
      positiveOffset: p.positiveOffset,
      positiveCounts: p.positiveCounts.slice(),
      negativeOffset: p.negativeOffset,
      negativeCounts: p.negativeCounts.slice(),
    };
  }

  #updateExponential(
    s: ExponentialState,
    p: ExponentialHistogramData & PointTimes,
  ) {
    s.startTimeUs = p.startTimeUs;
    s.startTimeExtraNs = p.startTimeExtraNs;
    s.timeUs = p.timeUs;
    s.timeExtraNs = p.timeExtraNs;
    s.count = p.count;
    s.sum = p.sum;
    s.scale = p.scale;
    s.zeroCount = p.zeroCount;
    s.zeroThreshold = p.zeroThreshold;
    s.positiveOffset = p.positiveOffset;
    s.positiveCounts = p.positiveCounts.slice();
    s.negativeOffset = p.negativeOffset;
    s.negativeCounts = p.negativeCounts.slice();
  }

  /** Moves a series to the most recent end, at most once per batch. */
  #touch(key: string, state: SeriesState): void {
    if (state.epoch === this.#epoch) return;
    state.epoch = this.#epoch;
    this.#series.delete(key);
    this.#series.set(key, state);
  }

  #insert(key: string, state: SeriesState): void {
    this.#series.set(key, state);
    if (this.#series.size <= this.#maxSeries) return;
    for (const [oldKey, old] of this.#series) {
      this.#series.delete(oldKey);
      this.#raiseFreshAfter(old);
      this.#counters.add(this.#prefix + "series_evicted");
      if (this.#series.size <= this.#maxSeries) break;
    }
  }

  #raiseFreshAfter(state: SeriesState): void {
    // The series may come back with its old start time; it must then be a
    // baseline, not a new series emitted whole.
    if (state.timeUs + 1 > this.#freshAfterUs) {
      this.#freshAfterUs = state.timeUs + 1;
    }
  }
}
