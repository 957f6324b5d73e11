/**
 * Test helper: OTLP/JSON objects (as the spec writes them: hex ids, enums as
 * numbers or names, 64-bit integers as strings) → OTLP/protobuf bytes, with
 * the real protobufjs encoder of @opentelemetry/otlp-transformer 0.214.
 */
import { createRequire } from "node:module";

interface PbType {
  fromObject(o: unknown): unknown;
  encode(m: unknown): { finish(): Uint8Array };
}

const root = createRequire(import.meta.url)(
  "@opentelemetry/otlp-transformer/build/src/generated/root.js",
  // deno-lint-ignore no-explicit-any
) as any;
const collector = root.opentelemetry.proto.collector;
const TraceRequest: PbType = collector.trace.v1.ExportTraceServiceRequest;
const MetricsRequest: PbType = collector.metrics.v1.ExportMetricsServiceRequest;

const ID_FIELDS = new Set(["traceId", "spanId", "parentSpanId"]);

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

/** Copies a JSON value, turning hex id strings into bytes. */
function withByteIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withByteIds);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    out[k] = ID_FIELDS.has(k) && typeof x === "string"
      ? hexToBytes(x)
      : withByteIds(x);
  }
  return out;
}

function encode(type: PbType, json: unknown): Uint8Array {
  return type.encode(type.fromObject(withByteIds(json))).finish();
}

/** OTLP/JSON trace request object → protobuf bytes. */
export function tracesToProtobuf(json: unknown): Uint8Array {
  return encode(TraceRequest, json);
}

/** OTLP/JSON metrics request object → protobuf bytes. */
export function metricsToProtobuf(json: unknown): Uint8Array {
  return encode(MetricsRequest, json);
}

/** A JSON value → UTF-8 body bytes. */
export function jsonBody(json: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(json));
}

/** Reads a file next to this module. */
export function readTestdata(name: string): Uint8Array {
  return Deno.readFileSync(new URL(name, import.meta.url));
}
