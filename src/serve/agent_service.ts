/**
 * `coral.agent.v1.AgentService/QueryEbpfMetrics` (proto/coral/agent/v1/
 * agent.proto, coral-interfaces §1) over the Connect protocol, unary:
 *
 *     POST /coral.agent.v1.AgentService/QueryEbpfMetrics
 *     Content-Type: application/proto | application/json
 *
 * JSON follows the proto3 JSON mapping: camelCase names out (snake_case is
 * accepted in), 64-bit integers as strings, enums by name (numbers
 * accepted). Errors are Connect errors: a JSON body
 * `{"code":"invalid_argument","message":…}` with the matching HTTP status.
 *
 * Each type answers the rows with seq_id above its `*_start_seq_id`,
 * ascending, at most `max_records` (default 10000, at most 50000); spans
 * only with `include_traces`, additionally cut so that at most `max_traces`
 * (default 100, at most 1000) distinct traces are returned. `*_max_seq_id`
 * is the highest seq_id returned, or the start seq_id when none was: the
 * caller asks again from there and gets every row once.
 *
 * @module
 */
import type { DuckDbStore, RecordKind } from "../store/store.ts";
import {
  readRowsAfter,
  type StoredRows,
  toCoralMessage,
} from "../store/rows_after.ts";
import {
  coralType,
  JSON_OBJECT_OPTIONS,
  longToNumber,
} from "./coral_protos.ts";

/** The path the query API routes here. */
export const QUERY_EBPF_METRICS_PATH =
  "/coral.agent.v1.AgentService/QueryEbpfMetrics";

const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_MAX_RECORDS = 10_000;
const MAX_RECORDS = 50_000;
const DEFAULT_MAX_TRACES = 100;
const MAX_TRACES = 1000;

const METRIC_TYPES: Record<number, RecordKind> = {
  1: "http",
  2: "grpc",
  3: "sql",
};

/** A Connect error: code name, HTTP status. */
export class ConnectError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Request {
  serviceNames: string[];
  metricTypes: number[];
  traceId: string;
  maxTraces: number;
  includeTraces: boolean;
  start: Record<RecordKind, number>;
  maxRecords: number;
}

/** Answers `QueryEbpfMetrics` from a store. Counts `agent_rpc.*`. */
export class AgentService {
  constructor(
    private readonly store: DuckDbStore,
    private readonly counters?: { add(name: string, n?: number): void },
  ) {}

  /** Handles one HTTP request to {@linkcode QUERY_EBPF_METRICS_PATH}. */
  async handle(request: globalThis.Request): Promise<Response> {
    let json = false;
    try {
      if (request.method !== "POST") {
        throw new ConnectError(
          "unimplemented",
          405,
          `${request.method} not allowed: Connect unary calls are POST`,
        );
      }
      const type = (request.headers.get("content-type") ?? "").split(";")[0]!
        .trim().toLowerCase();
      if (type === "application/json") json = true;
      else if (type !== "application/proto") {
        // Connect: an unsupported codec is HTTP 415, not a Connect error.
        this.counters?.add("agent_rpc.failed.content_type");
        return new Response(null, {
          status: 415,
          headers: { "accept-post": "application/proto, application/json" },
        });
      }
      const body = await readBody(request);
      const query = json ? parseJson(body) : parseProto(body);
      const answer = await this.query(query);
      this.counters?.add("agent_rpc.requests");
      const Response_ = coralType("coral.agent.v1.QueryEbpfMetricsResponse");
      const message = Response_.fromObject(answer);
      if (json) {
        return new Response(
          JSON.stringify(Response_.toObject(message, JSON_OBJECT_OPTIONS)),
          { headers: { "content-type": "application/json" } },
        );
      }
      return new Response(new Uint8Array(Response_.encode(message).finish()), {
        headers: { "content-type": "application/proto" },
      });
    } catch (error) {
      const e = error instanceof ConnectError ? error : new ConnectError(
        "internal",
        500,
        `query failed: ${error instanceof Error ? error.message : error}`,
      );
      this.counters?.add(`agent_rpc.failed.${e.code}`);
      return new Response(
        JSON.stringify({ code: e.code, message: e.message }),
        {
          status: e.status,
          headers: { "content-type": "application/json" },
        },
      );
    }
  }

  async query(q: Request): Promise<Record<string, unknown>> {
    const conn = this.store.connection;
    const kinds = q.metricTypes.length === 0
      ? ["http", "grpc", "sql"] as const
      : [...new Set(q.metricTypes.map((t) => METRIC_TYPES[t]!))];
    const out: Record<string, unknown> = { sessionId: this.store.sessionId };
    const maxSeq: Record<RecordKind, number> = { ...q.start };
    let totalMetrics = 0;
    const field = {
      http: "httpMetrics",
      grpc: "grpcMetrics",
      sql: "sqlMetrics",
    };
    for (const kind of kinds) {
      if (kind === "spans") continue;
      const rows = await readRowsAfter(conn, kind, {
        afterSeq: q.start[kind],
        limit: q.maxRecords,
        services: q.serviceNames,
      });
      out[field[kind]] = rows.map((row) => toCoralMessage(kind, row));
      totalMetrics += rows.length;
      if (rows.length > 0) maxSeq[kind] = rows.at(-1)!.seqId;
    }
    let totalTraces = 0;
    if (q.includeTraces) {
      const rows = await readRowsAfter(conn, "spans", {
        afterSeq: q.start.spans,
        limit: q.maxRecords,
        services: q.serviceNames,
        traceId: q.traceId === "" ? undefined : q.traceId,
      });
      const kept: StoredRows["spans"][] = [];
      const traces = new Set<string>();
      for (const row of rows) {
        if (!traces.has(row.traceId)) {
          if (traces.size === q.maxTraces) break;
          traces.add(row.traceId);
        }
        kept.push(row);
      }
      out.traceSpans = kept.map((row) => toCoralMessage("spans", row));
      totalTraces = traces.size;
      if (kept.length > 0) maxSeq.spans = kept.at(-1)!.seqId;
    }
    out.totalMetrics = totalMetrics;
    out.totalTraces = totalTraces;
    out.httpMaxSeqId = maxSeq.http;
    out.grpcMaxSeqId = maxSeq.grpc;
    out.sqlMaxSeqId = maxSeq.sql;
    out.tracesMaxSeqId = maxSeq.spans;
    return out;
  }
}

async function readBody(request: globalThis.Request): Promise<Uint8Array> {
  let stream = request.body;
  const encoding = request.headers.get("content-encoding")?.toLowerCase();
  if (stream !== null && encoding === "gzip") {
    stream = stream.pipeThrough(new DecompressionStream("gzip"));
  } else if (encoding !== undefined && encoding !== "identity") {
    throw new ConnectError(
      "unimplemented",
      501,
      `content-encoding ${encoding} not supported: use gzip or identity`,
    );
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  if (stream !== null) {
    try {
      for await (const part of stream) {
        size += part.length;
        if (size > MAX_BODY_BYTES) {
          throw new ConnectError(
            "resource_exhausted",
            413,
            `request larger than ${MAX_BODY_BYTES} bytes`,
          );
        }
        parts.push(part);
      }
    } catch (error) {
      if (error instanceof ConnectError) throw error;
      throw new ConnectError(
        "invalid_argument",
        400,
        `cannot read body: ${error}`,
      );
    }
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  return body;
}

function invalid(message: string): ConnectError {
  return new ConnectError("invalid_argument", 400, message);
}

function parseProto(body: Uint8Array): Request {
  const type = coralType("coral.agent.v1.QueryEbpfMetricsRequest");
  let message: Record<string, unknown>;
  try {
    message = type.decode(body) as unknown as Record<string, unknown>;
  } catch (error) {
    throw invalid(
      `invalid QueryEbpfMetricsRequest: ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
  return normalize(message);
}

function parseJson(body: Uint8Array): Request {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(body) || "{}");
  } catch (error) {
    throw invalid(
      `invalid JSON: ${error instanceof Error ? error.message : error}`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("invalid QueryEbpfMetricsRequest: expected a JSON object");
  }
  const type = coralType("coral.agent.v1.QueryEbpfMetricsRequest");
  const camel: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    if (type.fields[name] === undefined) {
      throw invalid(`invalid QueryEbpfMetricsRequest: unknown field "${key}"`);
    }
    camel[name] = v;
  }
  const problem = verifyJson(camel);
  if (problem !== undefined) {
    throw invalid(`invalid QueryEbpfMetricsRequest: ${problem}`);
  }
  let message: Record<string, unknown>;
  try {
    message = type.toObject(type.fromObject(camel), { defaults: false });
  } catch (error) {
    throw invalid(
      `invalid QueryEbpfMetricsRequest: ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
  return normalize(message);
}

/** What protobufjs's `fromObject` would silently coerce. */
function verifyJson(m: Record<string, unknown>): string | undefined {
  for (const name of ["serviceNames", "metricTypes"]) {
    if (m[name] !== undefined && !Array.isArray(m[name])) {
      return `${name}: expected a list`;
    }
  }
  for (const [i, t] of ((m.metricTypes as unknown[]) ?? []).entries()) {
    if (typeof t !== "string" && typeof t !== "number") {
      return `metricTypes[${i}]: expected an EbpfMetricType name or number`;
    }
  }
  for (
    const name of [
      "maxTraces",
      "maxRecords",
      "httpStartSeqId",
      "grpcStartSeqId",
      "sqlStartSeqId",
      "tracesStartSeqId",
    ]
  ) {
    const v = m[name];
    if (v === undefined) continue;
    const text = typeof v === "number" ? String(v) : v;
    if (typeof text !== "string" || !/^-?[0-9]+$/.test(text)) {
      return `${name}: expected an integer (a number or a decimal string), got ${
        JSON.stringify(v)
      }`;
    }
  }
  if (m.includeTraces !== undefined && typeof m.includeTraces !== "boolean") {
    return "includeTraces: expected true or false";
  }
  return undefined;
}

function normalize(m: Record<string, unknown>): Request {
  const metricTypes = ((m.metricTypes as unknown[]) ?? []).map((t) => {
    const n = typeof t === "string" ? coralRootEnum(t) : Number(t);
    if (n === 0) return undefined;
    if (METRIC_TYPES[n] === undefined) {
      throw invalid(`metric_types: unknown EbpfMetricType ${t}`);
    }
    return n;
  }).filter((n): n is number => n !== undefined);
  const start = {
    http: seq(m.httpStartSeqId, "http_start_seq_id"),
    grpc: seq(m.grpcStartSeqId, "grpc_start_seq_id"),
    sql: seq(m.sqlStartSeqId, "sql_start_seq_id"),
    spans: seq(m.tracesStartSeqId, "traces_start_seq_id"),
  };
  const maxRecords = limit(
    m.maxRecords,
    "max_records",
    DEFAULT_MAX_RECORDS,
    MAX_RECORDS,
  );
  const maxTraces = limit(
    m.maxTraces,
    "max_traces",
    DEFAULT_MAX_TRACES,
    MAX_TRACES,
  );
  const traceId = String(m.traceId ?? "").toLowerCase();
  if (traceId !== "" && !/^[0-9a-f]{32}$/.test(traceId)) {
    throw invalid(`trace_id: expected 32 hex digits, got "${m.traceId}"`);
  }
  return {
    serviceNames: ((m.serviceNames as string[]) ?? []).filter((s) => s !== ""),
    metricTypes,
    traceId,
    maxTraces,
    includeTraces: m.includeTraces === true,
    start,
    maxRecords,
  };
}

function coralRootEnum(name: string): number {
  const values = coralType("coral.agent.v1.QueryEbpfMetricsRequest")
    .fields.metricTypes!.resolvedType as unknown as {
      values: Record<string, number>;
    };
  const n = values.values[name];
  if (n === undefined) {
    throw invalid(`metric_types: unknown EbpfMetricType ${name}`);
  }
  return n;
}

function seq(value: unknown, name: string): number {
  const n = longToNumber(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw invalid(
      `${name}: expected a seq_id from 0 to 2^53, got ${String(value)}`,
    );
  }
  return n;
}

function limit(
  value: unknown,
  name: string,
  fallback: number,
  cap: number,
): number {
  const n = longToNumber(value);
  if (n < 0) throw invalid(`${name}: expected a number ≥ 0, got ${n}`);
  return n === 0 ? fallback : Math.min(n, cap);
}
