/**
 * The records every source (OTLP today, eBPF later) turns its data into, and
 * that the store writes. One shape per table; nothing here knows about OTLP.
 *
 * Times are Unix milliseconds (numbers) unless a name says otherwise.
 * Latencies are milliseconds.
 */

/** Attribute values keep their type: an integer stays a number. */
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

/**
 * One explicit-bucket latency histogram for one window, as a delta.
 *
 * `boundsMs` are the finite upper bounds, ascending. `counts` has
 * `boundsMs.length + 1` entries: `counts[i]` counts values in
 * (boundsMs[i-1], boundsMs[i]] and the last entry is the +Inf bucket.
 * `count` equals the sum of `counts`. `minMs`/`maxMs` are null when unknown.
 */
export interface LatencyHistogram {
  boundsMs: number[];
  counts: number[];
  count: number;
  sumMs: number;
  minMs: number | null;
  maxMs: number | null;
}

/** Which side of a call a metric or span describes. */
export type CallSide = "server" | "client";

/** Fields shared by every metric record: one series, one window. */
export interface MetricWindow {
  /** End of the window (Unix ms). */
  timestampMs: number;
  /** Start of the window (Unix ms). */
  windowStartMs: number;
  serviceName: string;
  side: CallSide;
  histogram: LatencyHistogram;
  /** Point attributes not already held in a column, plus `beyla.attributes`. */
  attributes: Attributes;
  /** Where the record came from, e.g. "otlp" or "ebpf". */
  source: string;
}

export interface HttpMetricRecord extends MetricWindow {
  method: string;
  /** Route template ("/users/:id"); "" when unknown. */
  route: string;
  /** 0 when the request got no response. */
  statusCode: number;
}

export interface GrpcMetricRecord extends MetricWindow {
  /** Full method, "package.Service/Method". */
  method: string;
  /** gRPC status code number (0 = OK). */
  statusCode: number;
}

export interface SqlMetricRecord extends MetricWindow {
  /** "postgresql", "mysql", "redis", … ("" when unknown). */
  dbSystem: string;
  /** SELECT, INSERT, … or the Redis command. */
  operation: string;
  /** Table or collection; "" when unknown. */
  table: string;
  /** `error.type` of failed calls; "" for calls that succeeded. */
  errorType: string;
}

/** Span kinds as OTLP numbers them. */
export const SPAN_KINDS = [
  "unspecified",
  "internal",
  "server",
  "client",
  "producer",
  "consumer",
] as const;
export type SpanKind = typeof SPAN_KINDS[number];

export interface SpanRecord {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** 16 lowercase hex digits; "" for a root span. */
  parentSpanId: string;
  serviceName: string;
  name: string;
  kind: SpanKind;
  /** Start as Unix microseconds. */
  startTimeUs: number;
  durationUs: number;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  attributes: Attributes;
  resourceAttributes: Attributes;
  /** 0 when unknown. */
  processPid: number;
  source: string;
}

/** What one export (or one eBPF flush) hands to the store. */
export interface RecordBatch {
  http: HttpMetricRecord[];
  grpc: GrpcMetricRecord[];
  sql: SqlMetricRecord[];
  spans: SpanRecord[];
}

export function emptyBatch(): RecordBatch {
  return { http: [], grpc: [], sql: [], spans: [] };
}

export function batchSize(batch: RecordBatch): number {
  return batch.http.length + batch.grpc.length + batch.sql.length +
    batch.spans.length;
}

/** Where batches go. `write` resolves once the batch is durable. */
export interface RecordSink {
  write(batch: RecordBatch): Promise<void>;
}
