/**
 * Records → OTLP/protobuf export requests, encoded by the protobufjs root
 * that `@opentelemetry/otlp-transformer` ships (no wire code of our own).
 *
 * Metric windows become delta Histogram points under the OpenTelemetry
 * names of coral-interfaces §5, all in seconds:
 *
 * | records                 | OTLP metric                                                  |
 * | ----------------------- | ------------------------------------------------------------ |
 * | HTTP server / client    | `http.server.request.duration` / `http.client.request.duration` |
 * | gRPC server / client    | `rpc.server.duration` / `rpc.client.duration`                |
 * | SQL, Redis              | `db.client.operation.duration`                               |
 *
 * Columns go back into their semantic-convention attributes, over the
 * record's own attributes; the service name becomes the resource's
 * `service.name`. Our own receiver (src/receive/otlp/) turns the result back
 * into the same records. Counts, bounds and times come back exactly; a sum,
 * min or max in milliseconds comes back within one ulp (ms / 1000 * 1000 is
 * not always the same double: ~1.4% of values differ in the last bit).
 *
 * @example
 * const body = encodeMetrics("http", batch.http);
 * await fetch(`${endpoint}/v1/metrics`, { method: "POST", body });
 */
import { TRANSFORMER_ROOT } from "../receive/otlp/transformer_root.ts";
import {
  type Attributes,
  type AttributeValue,
  type GrpcMetricRecord,
  type HttpMetricRecord,
  type MetricWindow,
  SPAN_KINDS,
  type SpanRecord,
  type SqlMetricRecord,
} from "../model/records.ts";
import { VERSION } from "../version.ts";

/** The record kinds, as counters name them: `export.otlp.sent.<kind>`. */
export type MetricKind = "http" | "grpc" | "sql";
export type ExportKind = MetricKind | "spans";
export const EXPORT_KINDS: readonly ExportKind[] = [
  "http",
  "grpc",
  "sql",
  "spans",
];

export interface MetricRecordOf {
  http: HttpMetricRecord;
  grpc: GrpcMetricRecord;
  sql: SqlMetricRecord;
}

const TEMPORALITY_DELTA = 1;
const MS_PER_SECOND = 1000;
const SCOPE = { name: "coral-agent", version: VERSION };

/** The OTLP metric a record goes to, by kind and side. */
export function metricName(kind: MetricKind, side: "server" | "client") {
  switch (kind) {
    case "http":
      return side === "server"
        ? "http.server.request.duration"
        : "http.client.request.duration";
    case "grpc":
      return side === "server" ? "rpc.server.duration" : "rpc.client.duration";
    case "sql":
      return "db.client.operation.duration";
  }
}

// ---------------------------------------------------------------------------
// The protobufjs root, loaded on first use (it is ~850 kB of generated code).

interface PbEncoder {
  encode(message: unknown): { finish(): Uint8Array<ArrayBuffer> };
}
interface PbDecoder<T> {
  decode(bytes: Uint8Array): T;
}
interface PbLong {
  low: number;
  high: number;
}
interface PartialSuccess {
  partialSuccess?: {
    rejectedDataPoints?: PbLong | number | null;
    rejectedSpans?: PbLong | number | null;
    errorMessage?: string | null;
  } | null;
}
interface CollectorRoot {
  opentelemetry: {
    proto: {
      collector: {
        trace: {
          v1: {
            ExportTraceServiceRequest: PbEncoder;
            ExportTraceServiceResponse: PbDecoder<PartialSuccess>;
          };
        };
        metrics: {
          v1: {
            ExportMetricsServiceRequest: PbEncoder;
            ExportMetricsServiceResponse: PbDecoder<PartialSuccess>;
          };
        };
      };
    };
  };
}

function collector() {
  return (TRANSFORMER_ROOT as CollectorRoot).opentelemetry.proto.collector;
}

// ---------------------------------------------------------------------------
// Values.

const TWO_32 = 2n ** 32n;

/** A uint64 as protobufjs takes it without long.js: two 32-bit halves. */
function uint64(n: bigint): PbLong {
  return { low: Number(n % TWO_32), high: Number(n / TWO_32) };
}

function nanosFromMs(ms: number): PbLong {
  return uint64(BigInt(Math.max(0, Math.trunc(ms))) * 1_000_000n);
}

function nanosFromUs(us: number): PbLong {
  return uint64(BigInt(Math.max(0, Math.trunc(us))) * 1_000n);
}

/** Milliseconds → seconds. */
function seconds(ms: number): number {
  return ms / MS_PER_SECOND;
}

interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number;
  doubleValue?: number;
}
interface PbKeyValue {
  key: string;
  value: PbAnyValue;
}

function anyValue(v: AttributeValue): PbAnyValue {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  return Number.isSafeInteger(v) ? { intValue: v } : { doubleValue: v };
}

/** The record's attributes, then `columns` over them. */
function keyValues(own: Attributes, columns: Attributes): PbKeyValue[] {
  const out: PbKeyValue[] = [];
  for (const key of Object.keys(own)) {
    if (!Object.hasOwn(columns, key)) {
      out.push({ key, value: anyValue(own[key]!) });
    }
  }
  for (const key of Object.keys(columns)) {
    out.push({ key, value: anyValue(columns[key]!) });
  }
  return out;
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Metrics.

/** The semantic-convention attributes for a record's columns. */
function columnAttributes<K extends MetricKind>(
  kind: K,
  r: MetricRecordOf[K],
): Attributes {
  const a: Attributes = {};
  switch (kind) {
    case "http": {
      const h = r as HttpMetricRecord;
      if (h.method !== "") a["http.request.method"] = h.method;
      if (h.route !== "") a["http.route"] = h.route;
      if (h.statusCode !== 0) a["http.response.status_code"] = h.statusCode;
      return a;
    }
    case "grpc": {
      const g = r as GrpcMetricRecord;
      if (!Object.hasOwn(g.attributes, "rpc.system")) a["rpc.system"] = "grpc";
      const slash = g.method.lastIndexOf("/");
      if (slash > 0 && slash < g.method.length - 1) {
        a["rpc.service"] = g.method.slice(0, slash);
        a["rpc.method"] = g.method.slice(slash + 1);
      } else if (g.method !== "") {
        a["rpc.method"] = g.method;
      }
      a["rpc.grpc.status_code"] = g.statusCode;
      return a;
    }
    case "sql": {
      const s = r as SqlMetricRecord;
      if (s.dbSystem !== "") a["db.system.name"] = s.dbSystem;
      if (s.operation !== "") a["db.operation.name"] = s.operation;
      if (s.table !== "") a["db.collection.name"] = s.table;
      if (s.errorType !== "") a["error.type"] = s.errorType;
      return a;
    }
  }
  throw new Error(`unknown metric kind: ${kind}`);
}

function histogramPoint(r: MetricWindow, attributes: PbKeyValue[]) {
  const h = r.histogram;
  const point: Record<string, unknown> = {
    attributes,
    startTimeUnixNano: nanosFromMs(r.windowStartMs),
    timeUnixNano: nanosFromMs(r.timestampMs),
    count: h.count,
    sum: seconds(h.sumMs),
    bucketCounts: h.counts,
    explicitBounds: h.boundsMs.map((b) => seconds(b)),
  };
  if (h.minMs !== null) point.min = seconds(h.minMs);
  if (h.maxMs !== null) point.max = seconds(h.maxMs);
  return point;
}

/**
 * Metric records of one kind as the fields of an ExportMetricsServiceRequest:
 * one resource per service, one metric per name, one delta point per record.
 */
export function metricsRequest<K extends MetricKind>(
  kind: K,
  records: readonly MetricRecordOf[K][],
): unknown {
  const services = new Map<string, Map<string, unknown[]>>();
  for (const r of records) {
    let metrics = services.get(r.serviceName);
    if (metrics === undefined) {
      metrics = new Map();
      services.set(r.serviceName, metrics);
    }
    const name = metricName(kind, r.side);
    let points = metrics.get(name);
    if (points === undefined) {
      points = [];
      metrics.set(name, points);
    }
    points.push(
      histogramPoint(r, keyValues(r.attributes, columnAttributes(kind, r))),
    );
  }
  return {
    resourceMetrics: [...services].map(([service, metrics]) => ({
      resource: {
        attributes: [{ key: "service.name", value: { stringValue: service } }],
      },
      scopeMetrics: [{
        scope: SCOPE,
        metrics: [...metrics].map(([name, dataPoints]) => ({
          name,
          unit: "s",
          description: "",
          histogram: {
            aggregationTemporality: TEMPORALITY_DELTA,
            dataPoints,
          },
        })),
      }],
    })),
  };
}

/** An ExportMetricsServiceRequest for metric records of one kind. */
export function encodeMetrics<K extends MetricKind>(
  kind: K,
  records: readonly MetricRecordOf[K][],
): Uint8Array<ArrayBuffer> {
  return collector().metrics.v1.ExportMetricsServiceRequest.encode(
    metricsRequest(kind, records),
  ).finish();
}

// ---------------------------------------------------------------------------
// Spans.

/** The resource of a span: its own, with `service.name` and `process.pid`. */
function spanResource(s: SpanRecord): Attributes {
  const resource: Attributes = { ...s.resourceAttributes };
  resource["service.name"] = s.serviceName;
  if (s.processPid !== 0 && !Object.hasOwn(resource, "process.pid")) {
    resource["process.pid"] = s.processPid;
  }
  return resource;
}

/** Spans as the fields of an ExportTraceServiceRequest, grouped by resource. */
export function tracesRequest(spans: readonly SpanRecord[]): unknown {
  const groups = new Map<string, { resource: Attributes; spans: unknown[] }>();
  const keys = new Map<Attributes, string>();
  for (const s of spans) {
    // Spans of one export share their resource object: stringify it once.
    let base = keys.get(s.resourceAttributes);
    if (base === undefined) {
      base = JSON.stringify(Object.entries(s.resourceAttributes));
      keys.set(s.resourceAttributes, base);
    }
    const key = `${s.serviceName}\u0000${s.processPid}\u0000${base}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { resource: spanResource(s), spans: [] };
      groups.set(key, group);
    }
    const span: Record<string, unknown> = {
      traceId: hexToBytes(s.traceId),
      spanId: hexToBytes(s.spanId),
      name: s.name,
      kind: Math.max(0, SPAN_KINDS.indexOf(s.kind)),
      startTimeUnixNano: nanosFromUs(s.startTimeUs),
      endTimeUnixNano: nanosFromUs(s.startTimeUs + s.durationUs),
      attributes: keyValues(s.attributes, {}),
      status: { code: s.statusCode, message: s.statusMessage },
    };
    if (s.parentSpanId !== "") span.parentSpanId = hexToBytes(s.parentSpanId);
    group.spans.push(span);
  }
  return {
    resourceSpans: [...groups.values()].map((g) => ({
      resource: { attributes: keyValues(g.resource, {}) },
      scopeSpans: [{ scope: SCOPE, spans: g.spans }],
    })),
  };
}

/** An ExportTraceServiceRequest for these spans. */
export function encodeSpans(
  spans: readonly SpanRecord[],
): Uint8Array<ArrayBuffer> {
  return collector().trace.v1.ExportTraceServiceRequest.encode(
    tracesRequest(spans),
  ).finish();
}

// ---------------------------------------------------------------------------
// Responses.

export interface ExportResponse {
  /** Points or spans the receiver says it rejected (partial success). */
  rejected: number;
  errorMessage: string;
}

function longToNumber(v: PbLong | number | null | undefined): number {
  if (v == null) return 0;
  if (typeof v === "number") return v;
  return (v.high >>> 0) * 2 ** 32 + (v.low >>> 0);
}

/**
 * The partial success of an export response; zero rejected when the body is
 * empty or not a response we can read (a 2xx means accepted).
 */
export function decodeExportResponse(
  signal: "metrics" | "traces",
  body: Uint8Array,
): ExportResponse {
  if (body.length === 0) return { rejected: 0, errorMessage: "" };
  try {
    const c = collector();
    const decoded = signal === "metrics"
      ? c.metrics.v1.ExportMetricsServiceResponse.decode(body)
      : c.trace.v1.ExportTraceServiceResponse.decode(body);
    const p = decoded.partialSuccess;
    if (p == null) return { rejected: 0, errorMessage: "" };
    return {
      rejected: longToNumber(
        signal === "metrics" ? p.rejectedDataPoints : p.rejectedSpans,
      ),
      errorMessage: p.errorMessage ?? "",
    };
  } catch {
    return { rejected: 0, errorMessage: "" };
  }
}
