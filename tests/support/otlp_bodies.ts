/**
 * OTLP request bodies written by hand as the specification defines them,
 * for tests that need exact bytes (bad input, JSON edge cases).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// deno-lint-ignore no-explicit-any
const root: any = require(
  "@opentelemetry/otlp-transformer/build/src/generated/root.js",
);
const collector = root.opentelemetry.proto.collector;

export interface SpanSpec {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startMs: number;
  durationMs: number;
  statusCode?: number;
}

/** An ExportTraceServiceRequest in OTLP/JSON form (hex ids, string int64s). */
export function traceRequestJson(service: string, spans: SpanSpec[]) {
  return {
    resourceSpans: [{
      resource: {
        attributes: [{ key: "service.name", value: { stringValue: service } }],
      },
      scopeSpans: [{
        scope: { name: "hand-written" },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? "",
          name: s.name,
          kind: 2,
          startTimeUnixNano: String(BigInt(s.startMs) * 1_000_000n),
          endTimeUnixNano: String(
            BigInt(s.startMs + s.durationMs) * 1_000_000n,
          ),
          status: { code: s.statusCode ?? 0 },
        })),
      }],
    }],
  };
}

export interface HistogramSpec {
  name: string;
  unit: string;
  attributes: Record<string, string | number>;
  bounds: number[];
  counts: (number | string)[];
  sum: number | string;
  count?: number | string;
  timeMs: number;
}

/** An ExportMetricsServiceRequest (delta histograms) in OTLP/JSON form. */
export function metricsRequestJson(
  service: string,
  histograms: HistogramSpec[],
) {
  return {
    resourceMetrics: [{
      resource: {
        attributes: [{ key: "service.name", value: { stringValue: service } }],
      },
      scopeMetrics: [{
        metrics: histograms.map((h) => ({
          name: h.name,
          unit: h.unit,
          histogram: {
            aggregationTemporality: 1,
            dataPoints: [{
              attributes: Object.entries(h.attributes).map(([key, value]) => ({
                key,
                value: typeof value === "number"
                  ? { intValue: String(value) }
                  : { stringValue: value },
              })),
              startTimeUnixNano: String(BigInt(h.timeMs - 10_000) * 1_000_000n),
              timeUnixNano: String(BigInt(h.timeMs) * 1_000_000n),
              count: String(
                h.count ?? h.counts.reduce((a: number, b) => a + Number(b), 0),
              ),
              sum: h.sum,
              bucketCounts: h.counts.map(String),
              explicitBounds: h.bounds,
            }],
          },
        })),
      }],
    }],
  };
}

/** The same request in protobuf, encoded by the OpenTelemetry JS encoder. */
export function traceRequestProtobuf(
  service: string,
  spans: SpanSpec[],
): Uint8Array<ArrayBuffer> {
  const Request = collector.trace.v1.ExportTraceServiceRequest;
  const hex = (h: string) =>
    Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
  const json = traceRequestJson(service, spans);
  for (const span of json.resourceSpans[0]!.scopeSpans[0]!.spans) {
    Object.assign(span, {
      traceId: hex(span.traceId),
      spanId: hex(span.spanId),
      parentSpanId: hex(span.parentSpanId),
    });
  }
  return Request.encode(Request.fromObject(json)).finish();
}

export function metricsRequestProtobuf(
  service: string,
  histograms: HistogramSpec[],
): Uint8Array<ArrayBuffer> {
  const Request = collector.metrics.v1.ExportMetricsServiceRequest;
  return Request.encode(
    Request.fromObject(metricsRequestJson(service, histograms)),
  )
    .finish();
}

/** Decodes a `google.rpc.Status` protobuf body: { code, message }. */
export function decodeStatus(
  bytes: Uint8Array,
): { code: number; message: string } {
  let code = 0;
  let message = "";
  let offset = 0;
  const varint = () => {
    let value = 0, shift = 0, byte = 0;
    do {
      byte = bytes[offset++]!;
      value |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  while (offset < bytes.length) {
    const tag = varint();
    if (tag === 8) code = varint();
    else if (tag === 18) {
      const length = varint();
      message = new TextDecoder().decode(
        bytes.subarray(offset, offset + length),
      );
      offset += length;
    } else throw new Error(`unexpected tag ${tag} in google.rpc.Status`);
  }
  return { code, message };
}

export function hexId(n: number, digits: 16 | 32): string {
  return n.toString(16).padStart(digits, "0");
}
