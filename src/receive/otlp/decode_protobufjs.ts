/**
 * OTLP/protobuf → decoded shape, with the protobufjs static root that
 * `@opentelemetry/otlp-transformer` 0.214 ships.
 *
 * The reference decoder: tests check that decode_protobuf.ts (the one the
 * agent uses, several times faster) gives exactly the same result. Loading it
 * costs the ~850 kB generated root, so the agent itself does not import it.
 *
 * protobufjs yields bytes as Uint8Array (Buffer under Deno), 64-bit integers
 * as long.js objects, and null for fields the message left out.
 */
import { TRANSFORMER_ROOT } from "./transformer_root.ts";
import type { Attributes, AttributeValue } from "../../model/records.ts";
import {
  type DecodedExponentialPoint,
  type DecodedHistogramPoint,
  type DecodedMetric,
  type DecodedMetrics,
  type DecodedResourceMetrics,
  type DecodedResourceSpans,
  type DecodedScope,
  type DecodedSpan,
  type DecodedTraces,
  OtlpDecodeError,
} from "./decode_types.ts";
import {
  bytesToBase64,
  bytesToHex,
  int64ToValue,
  type LongLike,
  nanos,
  setAttribute,
  splitNanosLong,
  unsignedToNumber,
} from "./decode_values.ts";

type Long = LongLike | number | null;

interface PbKeyValue {
  key: string | null;
  value: PbAnyValue | null;
}

interface PbAnyValue {
  stringValue: string | null;
  boolValue: boolean | null;
  intValue: Long;
  doubleValue: number | null;
  arrayValue: { values: PbAnyValue[] } | null;
  kvlistValue: { values: PbKeyValue[] } | null;
  bytesValue: Uint8Array | null;
}

interface PbScope {
  name: string | null;
  version: string | null;
}

interface PbSpan {
  traceId: Uint8Array | null;
  spanId: Uint8Array | null;
  parentSpanId: Uint8Array | null;
  name: string | null;
  kind: number | null;
  startTimeUnixNano: Long;
  endTimeUnixNano: Long;
  attributes: PbKeyValue[];
  status: { code: number | null; message: string | null } | null;
}

interface PbTraces {
  resourceSpans: {
    resource: { attributes: PbKeyValue[] } | null;
    scopeSpans: { scope: PbScope | null; spans: PbSpan[] }[];
  }[];
}

interface PbPointBase {
  attributes: PbKeyValue[];
  startTimeUnixNano: Long;
  timeUnixNano: Long;
  count: Long;
  sum: number | null;
  min: number | null;
  max: number | null;
  flags: number | null;
}

interface PbHistogramPoint extends PbPointBase {
  bucketCounts: Long[];
  explicitBounds: number[];
}

interface PbBuckets {
  offset: number | null;
  bucketCounts: Long[];
}

interface PbExponentialPoint extends PbPointBase {
  scale: number | null;
  zeroCount: Long;
  zeroThreshold: number | null;
  positive: PbBuckets | null;
  negative: PbBuckets | null;
}

interface PbMetric {
  name: string | null;
  unit: string | null;
  histogram:
    | { aggregationTemporality: number | null; dataPoints: PbHistogramPoint[] }
    | null;
  exponentialHistogram:
    | {
      aggregationTemporality: number | null;
      dataPoints: PbExponentialPoint[];
    }
    | null;
  sum: { dataPoints: unknown[] } | null;
  gauge: { dataPoints: unknown[] } | null;
  summary: { dataPoints: unknown[] } | null;
}

interface PbMetrics {
  resourceMetrics: {
    resource: { attributes: PbKeyValue[] } | null;
    scopeMetrics: { scope: PbScope | null; metrics: PbMetric[] }[];
  }[];
}

interface PbType<T> {
  decode(bytes: Uint8Array): T;
}

interface OtlpRoot {
  opentelemetry: {
    proto: {
      collector: {
        trace: { v1: { ExportTraceServiceRequest: PbType<PbTraces> } };
        metrics: { v1: { ExportMetricsServiceRequest: PbType<PbMetrics> } };
      };
    };
  };
}

const root = TRANSFORMER_ROOT as OtlpRoot;
const collector = root.opentelemetry.proto.collector;
const TraceRequest = collector.trace.v1.ExportTraceServiceRequest;
const MetricsRequest = collector.metrics.v1.ExportMetricsServiceRequest;

function decodeWith<T>(type: PbType<T>, body: Uint8Array): T {
  try {
    return type.decode(body);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new OtlpDecodeError(`invalid protobuf: ${detail}`, { cause: e });
  }
}

function plainValue(v: PbAnyValue | null): unknown {
  if (v == null) return null;
  if (v.stringValue != null) return v.stringValue;
  if (v.intValue != null) return int64ToValue(v.intValue);
  if (v.doubleValue != null) return v.doubleValue;
  if (v.boolValue != null) return v.boolValue;
  if (v.arrayValue != null) return v.arrayValue.values.map(plainValue);
  if (v.kvlistValue != null) {
    const out: Record<string, unknown> = {};
    for (const kv of v.kvlistValue.values) {
      out[kv.key ?? ""] = plainValue(kv.value);
    }
    return out;
  }
  if (v.bytesValue != null) return bytesToBase64(v.bytesValue);
  return null;
}

function anyValue(v: PbAnyValue | null): AttributeValue {
  if (v == null) return "";
  if (v.stringValue != null) return v.stringValue;
  if (v.intValue != null) return int64ToValue(v.intValue);
  if (v.doubleValue != null) return v.doubleValue;
  if (v.boolValue != null) return v.boolValue;
  if (v.arrayValue != null || v.kvlistValue != null) {
    return JSON.stringify(plainValue(v));
  }
  if (v.bytesValue != null) return bytesToBase64(v.bytesValue);
  return "";
}

function attributes(list: PbKeyValue[] | null | undefined): Attributes {
  const out: Attributes = {};
  if (list == null) return out;
  for (let i = 0; i < list.length; i++) {
    const kv = list[i]!;
    setAttribute(out, kv.key ?? "", anyValue(kv.value));
  }
  return out;
}

function scope(s: PbScope | null): DecodedScope {
  return { name: s?.name ?? "", version: s?.version ?? "" };
}

function span(s: PbSpan): DecodedSpan {
  splitNanosLong(s.startTimeUnixNano);
  const startTimeUs = nanos.us;
  const startTimeExtraNs = nanos.ns;
  splitNanosLong(s.endTimeUnixNano);
  return {
    traceId: bytesToHex(s.traceId),
    spanId: bytesToHex(s.spanId),
    parentSpanId: bytesToHex(s.parentSpanId),
    name: s.name ?? "",
    kind: s.kind ?? 0,
    startTimeUs,
    startTimeExtraNs,
    endTimeUs: nanos.us,
    endTimeExtraNs: nanos.ns,
    attributes: attributes(s.attributes),
    statusCode: s.status?.code ?? 0,
    statusMessage: s.status?.message ?? "",
  };
}

/** Decodes an OTLP/protobuf ExportTraceServiceRequest. */
export function decodeTracesProtobuf(body: Uint8Array): DecodedTraces {
  const req = decodeWith(TraceRequest, body);
  let spanCount = 0;
  const resourceSpans: DecodedResourceSpans[] = [];
  for (const rs of req.resourceSpans) {
    const scopeSpans = [];
    for (const ss of rs.scopeSpans) {
      const spans = new Array<DecodedSpan>(ss.spans.length);
      for (let i = 0; i < spans.length; i++) spans[i] = span(ss.spans[i]!);
      spanCount += spans.length;
      scopeSpans.push({ scope: scope(ss.scope), spans });
    }
    resourceSpans.push({
      resource: attributes(rs.resource?.attributes),
      scopeSpans,
    });
  }
  return { resourceSpans, spanCount };
}

function counts(list: Long[]): number[] {
  const out = new Array<number>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = unsignedToNumber(list[i]);
  return out;
}

function histogramPoint(p: PbHistogramPoint): DecodedHistogramPoint {
  splitNanosLong(p.startTimeUnixNano);
  const startTimeUs = nanos.us;
  const startTimeExtraNs = nanos.ns;
  splitNanosLong(p.timeUnixNano);
  return {
    attributes: attributes(p.attributes),
    startTimeUs,
    startTimeExtraNs,
    timeUs: nanos.us,
    timeExtraNs: nanos.ns,
    count: unsignedToNumber(p.count),
    sum: p.sum ?? null,
    min: p.min ?? null,
    max: p.max ?? null,
    explicitBounds: p.explicitBounds,
    bucketCounts: counts(p.bucketCounts),
    flags: p.flags ?? 0,
  };
}

function exponentialPoint(p: PbExponentialPoint): DecodedExponentialPoint {
  splitNanosLong(p.startTimeUnixNano);
  const startTimeUs = nanos.us;
  const startTimeExtraNs = nanos.ns;
  splitNanosLong(p.timeUnixNano);
  return {
    attributes: attributes(p.attributes),
    startTimeUs,
    startTimeExtraNs,
    timeUs: nanos.us,
    timeExtraNs: nanos.ns,
    count: unsignedToNumber(p.count),
    sum: p.sum ?? null,
    min: p.min ?? null,
    max: p.max ?? null,
    scale: p.scale ?? 0,
    zeroCount: unsignedToNumber(p.zeroCount),
    zeroThreshold: p.zeroThreshold ?? 0,
    positiveOffset: p.positive?.offset ?? 0,
    positiveCounts: counts(p.positive?.bucketCounts ?? []),
    negativeOffset: p.negative?.offset ?? 0,
    negativeCounts: counts(p.negative?.bucketCounts ?? []),
    flags: p.flags ?? 0,
  };
}

function metric(m: PbMetric): { metric: DecodedMetric; points: number } {
  const name = m.name ?? "";
  const unit = m.unit ?? "";
  if (m.histogram != null) {
    const points = m.histogram.dataPoints.map(histogramPoint);
    return {
      metric: {
        type: "histogram",
        name,
        unit,
        temporality: m.histogram.aggregationTemporality ?? 0,
        points,
      },
      points: points.length,
    };
  }
  if (m.exponentialHistogram != null) {
    const points = m.exponentialHistogram.dataPoints.map(exponentialPoint);
    return {
      metric: {
        type: "exponentialHistogram",
        name,
        unit,
        temporality: m.exponentialHistogram.aggregationTemporality ?? 0,
        points,
      },
      points: points.length,
    };
  }
  const other = m.sum != null
    ? { type: "sum" as const, n: m.sum.dataPoints.length }
    : m.gauge != null
    ? { type: "gauge" as const, n: m.gauge.dataPoints.length }
    : m.summary != null
    ? { type: "summary" as const, n: m.summary.dataPoints.length }
    : { type: "none" as const, n: 0 };
  return {
    metric: { type: other.type, name, unit, pointCount: other.n },
    points: other.n,
  };
}

/** Decodes an OTLP/protobuf ExportMetricsServiceRequest. */
export function decodeMetricsProtobuf(body: Uint8Array): DecodedMetrics {
  const req = decodeWith(MetricsRequest, body);
  let dataPointCount = 0;
  const resourceMetrics: DecodedResourceMetrics[] = [];
  for (const rm of req.resourceMetrics) {
    const scopeMetrics = [];
    for (const sm of rm.scopeMetrics) {
      const metrics: DecodedMetric[] = [];
      for (const m of sm.metrics) {
        const decoded = metric(m);
        dataPointCount += decoded.points;
        metrics.push(decoded.metric);
      }
      scopeMetrics.push({ scope: scope(sm.scope), metrics });
    }
    resourceMetrics.push({
      resource: attributes(rm.resource?.attributes),
      scopeMetrics,
    });
  }
  return { resourceMetrics, dataPointCount };
}
