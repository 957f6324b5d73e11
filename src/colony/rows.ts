/**
 * A PushBatchRequest (proto/coral/colony/v1/colony.proto), as a plain
 * object, checked field by field and turned into the records the store
 * writes. Every problem names the row and the field:
 * `http[3].window.latency_counts: expected 5 entries (one more than latency_buckets_ms), got 4`.
 *
 * @module
 */
import {
  type Attributes,
  type GrpcMetricRecord,
  type HttpMetricRecord,
  type MetricWindow,
  SPAN_KINDS,
  type SpanKind,
  type SpanRecord,
  type SqlMetricRecord,
} from "../model/records.ts";

/** A batch the colony cannot accept; `message` says which row and field. */
export class MalformedBatchError extends Error {
  override name = "MalformedBatchError";
}

/** Records of one kind, sorted by their agent seq_id (`seqs[i]` is `records[i]`'s). */
export interface SeqRecords<R> {
  records: R[];
  seqs: number[];
}

export interface PushedBatch {
  agentId: string;
  sessionId: string;
  http: SeqRecords<HttpMetricRecord>;
  grpc: SeqRecords<GrpcMetricRecord>;
  sql: SeqRecords<SqlMetricRecord>;
  spans: SeqRecords<SpanRecord>;
}

type Obj = Record<string, unknown>;

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

/**
 * Checks and converts a decoded request.
 *
 * @throws MalformedBatchError naming the first bad row and field.
 */
export function readPushBatch(body: unknown): PushedBatch {
  const o = object(body, "request");
  const agentId = str(o, "agent_id", "");
  if (agentId === "") bad("agent_id: expected a non-empty string");
  const sessionId = str(o, "session_id", "");
  if (sessionId === "") bad("session_id: expected a non-empty string");
  return {
    agentId,
    sessionId,
    http: readRows(o, "http", (row, at) => {
      const w = readWindow(row, at);
      return [w.seq, {
        ...w.window,
        method: str(row, "method", at),
        route: str(row, "route", at),
        statusCode: int(row, "status_code", at),
      }];
    }),
    grpc: readRows(o, "grpc", (row, at) => {
      const w = readWindow(row, at);
      return [w.seq, {
        ...w.window,
        method: str(row, "method", at),
        statusCode: int(row, "status_code", at),
      }];
    }),
    sql: readRows(o, "sql", (row, at) => {
      const w = readWindow(row, at);
      return [w.seq, {
        ...w.window,
        dbSystem: str(row, "db_system", at),
        operation: str(row, "operation", at),
        table: str(row, "table", at),
        errorType: str(row, "error_type", at),
      }];
    }),
    spans: readRows(o, "spans", readSpan),
  };
}

function readRows<R>(
  o: Obj,
  key: string,
  read: (row: Obj, at: string) => [number, R],
): SeqRecords<R> {
  const list = o[key] ?? [];
  if (!Array.isArray(list)) bad(`${key}: expected a list of rows`);
  const pairs: [number, R][] = [];
  const seen = new Set<number>();
  (list as unknown[]).forEach((item, i) => {
    const at = `${key}[${i}]`;
    const pair = read(object(item, at), at);
    if (seen.has(pair[0])) {
      bad(`${at}.seq_id: ${pair[0]} appears twice in the batch`);
    }
    seen.add(pair[0]);
    pairs.push(pair);
  });
  pairs.sort((a, b) => a[0] - b[0]);
  return { records: pairs.map((p) => p[1]), seqs: pairs.map((p) => p[0]) };
}

function readWindow(
  row: Obj,
  rowAt: string,
): { seq: number; window: MetricWindow } {
  const at = `${rowAt}.window`;
  if (row.window === undefined || row.window === null) {
    bad(`${at}: missing`);
  }
  const w = object(row.window, at);
  const seq = seqId(w, at);
  const timestampMs = int(w, "timestamp_ms", at);
  const windowStartMs = int(w, "window_start_ms", at);
  if (timestampMs <= 0) {
    bad(
      `${at}.timestamp_ms: expected a Unix time in milliseconds, got ${timestampMs}`,
    );
  }
  if (windowStartMs > timestampMs) {
    bad(
      `${at}.window_start_ms: expected at most timestamp_ms (${timestampMs}), got ${windowStartMs}`,
    );
  }
  const side = str(w, "side", at);
  if (side !== "server" && side !== "client") {
    bad(
      `${at}.side: expected "server" or "client", got ${JSON.stringify(side)}`,
    );
  }
  const bounds = numbers(w, "latency_buckets_ms", at);
  bounds.forEach((b, i) => {
    if (i > 0 && !(b > bounds[i - 1]!)) {
      bad(
        `${at}.latency_buckets_ms[${i}]: expected ascending bounds, got ${b} after ${
          bounds[i - 1]
        }`,
      );
    }
  });
  const counts = numbers(w, "latency_counts", at);
  if (counts.length !== bounds.length + 1) {
    bad(
      `${at}.latency_counts: expected ${
        bounds.length + 1
      } entries (one more than latency_buckets_ms), got ${counts.length}`,
    );
  }
  let total = 0;
  counts.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0) {
      bad(`${at}.latency_counts[${i}]: expected a whole number >= 0, got ${c}`);
    }
    total += c;
  });
  const count = int(w, "count", at);
  if (count !== total) {
    bad(
      `${at}.count: expected the sum of latency_counts (${total}), got ${count}`,
    );
  }
  return {
    seq,
    window: {
      timestampMs,
      windowStartMs,
      serviceName: str(w, "service_name", at),
      side,
      histogram: {
        boundsMs: bounds,
        counts,
        count,
        sumMs: num(w, "sum_ms", at),
        minMs: optionalNum(w, "min_ms", at),
        maxMs: optionalNum(w, "max_ms", at),
      },
      attributes: attributes(w, "attributes_json", at),
      source: str(w, "source", at) || "colony",
    },
  };
}

function readSpan(row: Obj, at: string): [number, SpanRecord] {
  const seq = seqId(row, at);
  const traceId = str(row, "trace_id", at).toLowerCase();
  if (!HEX32.test(traceId)) {
    bad(
      `${at}.trace_id: expected 32 hex digits, got ${JSON.stringify(traceId)}`,
    );
  }
  const spanId = str(row, "span_id", at).toLowerCase();
  if (!HEX16.test(spanId)) {
    bad(`${at}.span_id: expected 16 hex digits, got ${JSON.stringify(spanId)}`);
  }
  const parent = str(row, "parent_span_id", at).toLowerCase();
  if (parent !== "" && !HEX16.test(parent)) {
    bad(
      `${at}.parent_span_id: expected "" or 16 hex digits, got ${
        JSON.stringify(parent)
      }`,
    );
  }
  const kind = str(row, "kind", at) || "unspecified";
  if (!(SPAN_KINDS as readonly string[]).includes(kind)) {
    bad(
      `${at}.kind: expected one of ${SPAN_KINDS.join(", ")}, got ${
        JSON.stringify(kind)
      }`,
    );
  }
  const durationUs = int(row, "duration_us", at);
  if (durationUs < 0) {
    bad(`${at}.duration_us: expected >= 0, got ${durationUs}`);
  }
  return [seq, {
    traceId,
    spanId,
    parentSpanId: parent,
    serviceName: str(row, "service_name", at),
    name: str(row, "name", at),
    kind: kind as SpanKind,
    startTimeUs: int(row, "start_time_us", at),
    durationUs,
    statusCode: int(row, "status_code", at),
    statusMessage: str(row, "status_message", at),
    attributes: attributes(row, "attributes_json", at),
    resourceAttributes: attributes(row, "resource_attributes_json", at),
    processPid: int(row, "process_pid", at),
    source: str(row, "source", at) || "colony",
  }];
}

function bad(message: string): never {
  throw new MalformedBatchError(message);
}

function object(value: unknown, at: string): Obj {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    bad(`${at}: expected an object`);
  }
  return value as Obj;
}

function path(at: string, key: string): string {
  return at === "" ? key : `${at}.${key}`;
}

function str(o: Obj, key: string, at: string): string {
  const v = o[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") {
    bad(`${path(at, key)}: expected a string, got ${typeof v}`);
  }
  return v;
}

/** A number, or a decimal string as proto3 JSON writes 64-bit integers. */
function num(o: Obj, key: string, at: string): number {
  const v = o[key];
  if (v === undefined || v === null) return 0;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    bad(`${path(at, key)}: expected a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

function optionalNum(o: Obj, key: string, at: string): number | null {
  return o[key] === undefined || o[key] === null ? null : num(o, key, at);
}

function int(o: Obj, key: string, at: string): number {
  const n = num(o, key, at);
  if (!Number.isSafeInteger(n)) {
    bad(`${path(at, key)}: expected a whole number, got ${n}`);
  }
  return n;
}

function seqId(o: Obj, at: string): number {
  const n = int(o, "seq_id", at);
  if (n < 1) {
    bad(`${path(at, "seq_id")}: expected a seq_id of 1 or more, got ${n}`);
  }
  return n;
}

function numbers(o: Obj, key: string, at: string): number[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v)) bad(`${path(at, key)}: expected a list of numbers`);
  return (v as unknown[]).map((item, i) => {
    const n = typeof item === "string" && item.trim() !== ""
      ? Number(item)
      : item;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      bad(
        `${path(at, key)}[${i}]: expected a finite number, got ${
          JSON.stringify(item)
        }`,
      );
    }
    return n;
  });
}

function attributes(o: Obj, key: string, at: string): Attributes {
  const text = str(o, key, at);
  if (text === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    bad(
      `${path(at, key)}: expected JSON object text, got ${
        JSON.stringify(text.slice(0, 40))
      }`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    bad(`${path(at, key)}: expected a JSON object`);
  }
  return value as Attributes;
}
