/**
 * The part every captured metric record shares: one series' log-linear
 * histogram of nanoseconds, as the window record the store keeps
 * (milliseconds, explicit buckets), with the series' service, side and
 * attributes. HttpWindows, GrpcWindows and SqlWindows add their keys.
 *
 * @module
 */
import type { LogLinearHistogram } from "../aggregate/log_linear.ts";
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
