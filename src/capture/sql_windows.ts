/**
 * Turns database calls the capture decoded (PostgreSQL and MySQL queries,
 * Redis commands) into what the store keeps: per window, one
 * `SqlMetricRecord` per (service, side, system, operation, table, error type
 * [, peer for clients]) with a fine log-linear latency histogram; and one
 * `SpanRecord` per call, sampled like HTTP spans (errors always kept).
 *
 * Spans follow the OpenTelemetry database conventions: named
 * "{db.operation.name} {db.collection.name}" (the operation alone without a
 * table, the table alone without an operation, else the system), with
 * `db.system.name` (and the older `db.system`, which the OTLP path also
 * reads), `db.operation.name`, `db.collection.name`, `db.query.text`,
 * `error.type` and `db.response.status_code` on errors.
 *
 * Windows are cut by the caller (`closeWindow`); series per window and
 * spans waiting to be taken are bounded, and what goes over is counted.
 *
 * @module
 */
import type { Counters } from "../model/counters.ts";
import type {
  Attributes,
  CallSide,
  SpanRecord,
  SqlMetricRecord,
} from "../model/records.ts";
import { LogLinearHistogram } from "../aggregate/log_linear.ts";
import { type CallWindowsOptions, OpenWindow } from "./window_records.ts";
import { SpanMaker } from "./span_maker.ts";

/** One query or command and its answer, as the capture saw them. */
export interface SqlCall {
  serviceName: string;
  pid: number;
  /** "client" when the traced process sent the query, "server" when it answered it. */
  side: CallSide;
  dbSystem: "postgresql" | "mysql" | "redis";
  /** "SELECT", … or the Redis command ("GET", "CLIENT SETNAME"); "" unknown. */
  operation: string;
  /** "" when none or unknown (always "" for Redis). */
  table: string;
  /** As it may be stored (already obfuscated when configured); "" unknown. */
  queryText: string;
  /** "" on success; else SQLSTATE ("42P01"), MySQL error code ("1146") or Redis error prefix ("WRONGTYPE"). */
  errorType: string;
  errorMessage: string;
  /** Start as Unix microseconds. */
  startTimeUs: number;
  durationNs: number;
  remoteAddress: string;
  remotePort: number;
  localPort: number;
}

/** Options of {@linkcode SqlWindows}. */
export type SqlWindowsOptions = CallWindowsOptions;

interface Series {
  serviceName: string;
  side: CallSide;
  dbSystem: string;
  operation: string;
  table: string;
  errorType: string;
  attributes: Attributes;
  histogram: LogLinearHistogram;
}

const CALLS_COUNTER = {
  server: "ebpf.sql.calls.server",
  client: "ebpf.sql.calls.client",
} as const;

/**
 * The span name the OpenTelemetry database conventions ask for:
 * "{operation} {table}", either alone when the other is unknown, else the
 * database system.
 */
export function sqlSpanName(call: SqlCall): string {
  const { operation, table } = call;
  if (operation === "") return table === "" ? call.dbSystem : table;
  return table === "" ? operation : `${operation} ${table}`;
}

export class SqlWindows {
  readonly #counters: Counters;
  readonly #spans: SpanMaker;
  /** Open window: service → table → side, system, operation, error (, peer). */
  readonly #window: OpenWindow<Series>;

  constructor(options: SqlWindowsOptions) {
    this.#counters = options.counters;
    this.#spans = new SpanMaker({ ...options, kind: "sql" });
    this.#window = new OpenWindow("sql", options);
  }

  /** Series in the open window. */
  get seriesCount(): number {
    return this.#window.count;
  }

  /** Spans waiting for takeSpans(). */
  get pendingSpans(): number {
    return this.#spans.pending;
  }

  /** Counts one call in the open window and makes its span (unless sampled out). */
  add(call: SqlCall): void {
    this.#counters.add(CALLS_COUNTER[call.side]);
    this.#addToSeries(call);
    this.#addSpan(call);
  }

  /** The spans made since the last call. */
  takeSpans(): SpanRecord[] {
    return this.#spans.take();
  }

  /**
   * Ends the open window at `endMs` (default now): one record per series,
   * latencies in ms. The next window starts at `endMs`.
   */
  closeWindow(endMs = Date.now()): SqlMetricRecord[] {
    return this.#window.close(endMs, (s, window) => ({
      ...window,
      dbSystem: s.dbSystem,
      operation: s.operation,
      table: s.table,
      errorType: s.errorType,
    }));
  }

  #addToSeries(c: SqlCall): void {
    const client = c.side === "client";
    const byCall = this.#window.group(c.serviceName, c.table);
    // NUL never occurs in the names, so keys cannot run into each other.
    const key = client
      ? `c\0${c.dbSystem}\0${c.operation}\0${c.errorType}\0${c.remoteAddress}\0${c.remotePort}`
      : `s\0${c.dbSystem}\0${c.operation}\0${c.errorType}`;
    let series = byCall.get(key);
    if (series === undefined) {
      if (!this.#window.hasRoom()) return;
      const attributes: Attributes = {};
      if (client) {
        attributes["server.address"] = c.remoteAddress;
        attributes["server.port"] = c.remotePort;
      }
      this.#spans.addExtra(attributes);
      series = {
        serviceName: c.serviceName,
        side: c.side,
        dbSystem: c.dbSystem,
        operation: c.operation,
        table: c.table,
        errorType: c.errorType,
        attributes,
        histogram: new LogLinearHistogram(),
      };
      this.#window.insert(byCall, key, series);
    }
    series.histogram.record(c.durationNs);
  }

  #addSpan(c: SqlCall): void {
    const error = c.errorType !== "";
    const spans = this.#spans;
    if (!spans.admit(error, undefined)) return;
    // One literal per side: objects of one shape are cheaper to build and store.
    const attributes: Attributes = c.side === "client"
      ? {
        "db.system.name": c.dbSystem,
        "db.system": c.dbSystem,
        "server.address": c.remoteAddress,
        "server.port": c.remotePort,
      }
      : {
        "db.system.name": c.dbSystem,
        "db.system": c.dbSystem,
        "server.port": c.localPort,
        "client.address": c.remoteAddress,
        "client.port": c.remotePort,
      };
    if (c.operation !== "") attributes["db.operation.name"] = c.operation;
    if (c.table !== "") attributes["db.collection.name"] = c.table;
    if (c.queryText !== "") attributes["db.query.text"] = c.queryText;
    if (error) {
      attributes["error.type"] = c.errorType;
      attributes["db.response.status_code"] = c.errorType;
    }
    spans.addExtra(attributes);
    spans.push({
      traceId: spans.traceId(undefined),
      spanId: spans.spanId(),
      parentSpanId: "",
      serviceName: c.serviceName,
      name: sqlSpanName(c),
      kind: c.side,
      startTimeUs: c.startTimeUs,
      durationUs: Math.floor(c.durationNs / 1000),
      statusCode: error ? 2 : 0,
      statusMessage: error ? c.errorMessage : "",
      attributes,
      resourceAttributes: spans.resource(c.serviceName, c.pid),
      processPid: c.pid,
      source: "ebpf",
    });
  }
}
