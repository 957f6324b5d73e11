/** Record builders for the store's tests and bench. */
import type {
  GrpcMetricRecord,
  HttpMetricRecord,
  LatencyHistogram,
  SpanRecord,
  SqlMetricRecord,
} from "../../model/records.ts";

export const BOUNDS = [10, 20, 50];

export function histogram(
  counts: number[],
  options: { bounds?: number[]; min?: number | null; max?: number | null } = {},
): LatencyHistogram {
  return {
    boundsMs: options.bounds ?? BOUNDS,
    counts,
    count: counts.reduce((a, b) => a + b, 0),
    sumMs: 0,
    minMs: options.min ?? null,
    maxMs: options.max ?? null,
  };
}

const window = (endMs: number) => ({
  timestampMs: endMs,
  windowStartMs: endMs - 10_000,
  attributes: {},
  source: "test",
});

export function httpRecord(
  endMs: number,
  fields: Partial<HttpMetricRecord> & { counts: number[] },
): HttpMetricRecord {
  const { counts, ...rest } = fields;
  return {
    ...window(endMs),
    serviceName: "checkout",
    side: "server",
    method: "GET",
    route: "/items",
    statusCode: 200,
    histogram: histogram(counts),
    ...rest,
  };
}

export function grpcRecord(
  endMs: number,
  fields: Partial<GrpcMetricRecord> & { counts: number[] },
): GrpcMetricRecord {
  const { counts, ...rest } = fields;
  return {
    ...window(endMs),
    serviceName: "cart",
    side: "server",
    method: "shop.Cart/Add",
    statusCode: 0,
    histogram: histogram(counts),
    ...rest,
  };
}

export function sqlRecord(
  endMs: number,
  fields: Partial<SqlMetricRecord> & { counts: number[] },
): SqlMetricRecord {
  const { counts, ...rest } = fields;
  return {
    ...window(endMs),
    serviceName: "checkout",
    side: "client",
    dbSystem: "postgresql",
    operation: "SELECT",
    table: "users",
    errorType: "",
    histogram: histogram(counts),
    ...rest,
  };
}

/** Trace ids from small numbers: traceId(1) = "000…01". */
export function traceId(n: number): string {
  return n.toString(16).padStart(32, "0");
}

export function spanId(n: number): string {
  return n.toString(16).padStart(16, "0");
}

export function span(
  trace: number,
  id: number,
  fields: Partial<SpanRecord> = {},
): SpanRecord {
  return {
    traceId: traceId(trace),
    spanId: spanId(id),
    parentSpanId: "",
    serviceName: "checkout",
    name: "GET /items",
    kind: "server",
    startTimeUs: 1_700_000_000_000_000,
    durationUs: 1000,
    statusCode: 0,
    statusMessage: "",
    attributes: {},
    resourceAttributes: { "service.name": "checkout" },
    processPid: 0,
    source: "test",
    ...fields,
  };
}
