/**
 * The part every captured metric record shares: one series' log-linear
 * histogram of nanoseconds, as the window record the store keeps
 * (milliseconds, explicit buckets), with the series' service, side and
 * attributes. HttpWindows, GrpcWindows and SqlWindows add their keys; each
 * keeps its open window's series in an {@linkcode OpenWindow}.
 *
 * @module
 */
import type { LogLinearHistogram } from "../aggregate/log_linear.ts";
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import type { Attributes, CallSide, MetricWindow } from "../model/records.ts";

const NS_PER_MS = 1e6;

/** What a series holds for {@linkcode metricWindow}. */
export interface WindowSeries {
  serviceName: string;
  side: CallSide;
  attributes: Attributes;
  /** Latencies in nanoseconds. */
  histogram: LogLinearHistogram;
}

/** The record fields of one series for the window [windowStartMs, timestampMs]. */
export function metricWindow(
  series: WindowSeries,
  timestampMs: number,
  windowStartMs: number,
): MetricWindow {
  const h = series.histogram;
  const { bounds, counts } = h.toExplicit(1 / NS_PER_MS);
  const min = h.min;
  const max = h.max;
  return {
    timestampMs,
    windowStartMs,
    serviceName: series.serviceName,
    side: series.side,
    histogram: {
      boundsMs: bounds,
      counts,
      count: h.count,
      sumMs: h.sum / NS_PER_MS,
      minMs: min === null ? null : min / NS_PER_MS,
      maxMs: max === null ? null : max / NS_PER_MS,
    },
    attributes: series.attributes,
    source: "ebpf",
  };
}

/** What HttpWindows, GrpcWindows and SqlWindows are made with. */
export interface CallWindowsOptions {
  /** Uses attributes and sampling.rate (HTTP also protocols.http.route_patterns). */
  beyla: BeylaConfig;
  counters: Counters;
  /** Start of the first window (Unix ms); default now. */
  startMs?: number;
  /** Series per window before new ones are dropped (counted). Default 10000. */
  maxSeries?: number;
  /** Spans held until takeSpans() before new ones are dropped (counted). Default 50000. */
  maxPendingSpans?: number;
  /** Random bytes for trace and span ids; default crypto.getRandomValues. */
  randomBytes?: (into: Uint8Array) => void;
}

/**
 * The open window's series of one kind, nested service → group (route,
 * method, table) → key, at most `maxSeries` of them (a new one over that is
 * counted under `ebpf.<kind>.series_dropped.too_many_series`), and when the
 * window started.
 */
export class OpenWindow<S extends WindowSeries> {
  readonly #counters: Counters;
  readonly #maxSeries: number;
  readonly #droppedCounter: string;
  #series = new Map<string, Map<string, Map<string | number, S>>>();
  #count = 0;
  #startMs: number;

  constructor(kind: string, options: CallWindowsOptions) {
    this.#counters = options.counters;
    this.#maxSeries = options.maxSeries ?? 10_000;
    this.#droppedCounter = `ebpf.${kind}.series_dropped.too_many_series`;
    this.#startMs = options.startMs ?? Date.now();
  }

  /** Series in the open window. */
  get count(): number {
    return this.#count;
  }

  /** The series of `service`'s `group`, by key (created empty when new). */
  group(service: string, group: string): Map<string | number, S> {
    let groups = this.#series.get(service);
    if (groups === undefined) {
      groups = new Map();
      this.#series.set(service, groups);
    }
    let byKey = groups.get(group);
    if (byKey === undefined) {
      byKey = new Map();
      groups.set(group, byKey);
    }
    return byKey;
  }

  /** Whether a new series fits; when not, the drop is counted. */
  hasRoom(): boolean {
    if (this.#count < this.#maxSeries) return true;
    this.#counters.add(this.#droppedCounter);
    return false;
  }

  /** Adds a new series to a group from {@linkcode group}. */
  insert(
    byKey: Map<string | number, S>,
    key: string | number,
    series: S,
  ): void {
    byKey.set(key, series);
    this.#count++;
  }

  /**
   * Ends the window at `endMs` (not before its start): one record per series
   * from `toRecord`; the next window starts at `endMs`.
   */
  close<R>(
    endMs: number,
    toRecord: (series: S, window: MetricWindow) => R,
  ): R[] {
    const windowStartMs = this.#startMs;
    const timestampMs = Math.max(endMs, windowStartMs);
    this.#startMs = timestampMs;
    const records: R[] = [];
    for (const groups of this.#series.values()) {
      for (const byKey of groups.values()) {
        for (const s of byKey.values()) {
          records.push(
            toRecord(s, metricWindow(s, timestampMs, windowStartMs)),
          );
        }
      }
    }
    this.#series = new Map();
    this.#count = 0;
    return records;
  }
}
