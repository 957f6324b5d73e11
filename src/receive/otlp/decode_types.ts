/**
 * The decoded form of OTLP export requests: one shape for protobuf and JSON,
 * so each transform has a single code path.
 *
 * - Ids are lowercase hex strings of whatever length the sender sent ("" when
 *   absent); the transforms judge their length.
 * - 64-bit nanosecond times are split into exact numbers: `…Us` =
 *   floor(ns / 1000) and `…ExtraNs` = ns % 1000.
 * - Counts are numbers. They can be NaN, negative or fractional when a JSON
 *   sender wrote nonsense: the transforms reject such points, they are not a
 *   decoding error.
 * - Attributes are typed: int64 values within ±(2^53-1) are numbers, larger
 *   ones decimal strings; arrays and key-value lists are JSON text; bytes are
 *   base64.
 * - Only what the transforms use is kept: span events and links, exemplars
 *   and the data points of sums, gauges and summaries (only counted) are not.
 *
 * Decoded objects belong to the caller: the transforms add to attribute
 * objects in place and hand arrays on to the records they make.
 */
import type { Attributes } from "../../model/records.ts";
import type {
  ExplicitHistogramData,
  ExponentialHistogramData,
  PointTimes,
} from "../../aggregate/histogram.ts";

/** A request body could not be decoded; the message says where and why. */
export class OtlpDecodeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OtlpDecodeError";
  }
}

export type OtlpFormat = "protobuf" | "json";

export interface DecodedScope {
  name: string;
  version: string;
}

export interface DecodedTraces {
  resourceSpans: DecodedResourceSpans[];
  /** Number of spans in the request. */
  spanCount: number;
}

export interface DecodedResourceSpans {
  /** Resource attributes; shared by every span of the resource. */
  resource: Attributes;
  scopeSpans: DecodedScopeSpans[];
}

export interface DecodedScopeSpans {
  scope: DecodedScope;
  spans: DecodedSpan[];
}

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind number (0 unspecified … 5 consumer). */
  kind: number;
  startTimeUs: number;
  startTimeExtraNs: number;
  endTimeUs: number;
  endTimeExtraNs: number;
  attributes: Attributes;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
}

export interface DecodedMetrics {
  resourceMetrics: DecodedResourceMetrics[];
  /** Number of data points of every kind in the request. */
  dataPointCount: number;
}

export interface DecodedResourceMetrics {
  resource: Attributes;
  scopeMetrics: DecodedScopeMetrics[];
}

export interface DecodedScopeMetrics {
  scope: DecodedScope;
  metrics: DecodedMetric[];
}

/** OTLP AggregationTemporality: 0 unspecified, 1 delta, 2 cumulative. */
export const TEMPORALITY_DELTA = 1;
export const TEMPORALITY_CUMULATIVE = 2;

/** DataPointFlags.FLAG_NO_RECORDED_VALUE. */
export const FLAG_NO_RECORDED_VALUE = 1;

interface MetricBase {
  name: string;
  unit: string;
}

export interface DecodedHistogramMetric extends MetricBase {
  type: "histogram";
  temporality: number;
  points: DecodedHistogramPoint[];
}

export interface DecodedExponentialHistogramMetric extends MetricBase {
  type: "exponentialHistogram";
  temporality: number;
  points: DecodedExponentialPoint[];
}

/** Sums, gauges, summaries and metrics without data: only counted. */
export interface DecodedOtherMetric extends MetricBase {
  type: "sum" | "gauge" | "summary" | "none";
  pointCount: number;
}

export type DecodedMetric =
  | DecodedHistogramMetric
  | DecodedExponentialHistogramMetric
  | DecodedOtherMetric;

export interface DecodedHistogramPoint
  extends ExplicitHistogramData, PointTimes {
  attributes: Attributes;
  flags: number;
}

export interface DecodedExponentialPoint
  extends ExponentialHistogramData, PointTimes {
  attributes: Attributes;
  flags: number;
}
