/**
 * Turns gRPC calls the capture decoded (one HTTP/2 stream each) into what
 * the store keeps: per window, one `GrpcMetricRecord` per (service, side,
 * method, status [, peer for clients]) with a fine log-linear latency
 * histogram; and one `SpanRecord` per call, sampled by trace id like HTTP
 * spans (errors always kept), joining the caller's trace when the request
 * carried a `traceparent`.
 *
 * A call that ended without a `grpc-status` (stream reset, connection cut;
 * `statusCode` -1) is stored as UNKNOWN (2): the store and `query grpc`
 * count 2 as an error on both sides, as such a call is.
 *
 * Spans follow the OpenTelemetry RPC conventions: named by the full method
 * ("package.Service/Method", "grpc" when unknown), with `rpc.system`,
 * `rpc.service`, `rpc.method` and `rpc.grpc.status_code`.
 *
 * @module
 */
import type { Counters } from "../model/counters.ts";
import type {
  Attributes,
  CallSide,
  GrpcMetricRecord,
  SpanRecord,
} from "../model/records.ts";
import { LogLinearHistogram } from "../aggregate/log_linear.ts";
import { type CallWindowsOptions, OpenWindow } from "./window_records.ts";
import type { Traceparent } from "../decode/http1.ts";
import { SpanMaker } from "./span_maker.ts";

/** One gRPC call, as the capture saw it. */
export interface GrpcCall {
  serviceName: string;
  pid: number;
  side: CallSide;
  /** "package.Service/Method" (the :path without its leading "/"); "" when unknown. */
  method: string;
  /** gRPC status (0 OK); GRPC_NO_STATUS (-1) when none was sent (stream reset, cut); GRPC_STATUS_UNDECODED (-2) when it could not be decoded. */
  statusCode: number;
  /** Start as Unix microseconds. */
  startTimeUs: number;
  durationNs: number;
  remoteAddress: string;
  remotePort: number;
  localPort: number;
  requestBytes: number;
  responseBytes: number;
  traceparent?: Traceparent;
}

/** Options of {@linkcode GrpcWindows}. */
export type GrpcWindowsOptions = CallWindowsOptions;

interface Series {
  serviceName: string;
  side: CallSide;
  method: string;
  statusCode: number;
  attributes: Attributes;
  histogram: LogLinearHistogram;
}

/** The parts of a full method for `rpc.service` and `rpc.method`. */
interface MethodParts {
  service: string;
  method: string;
}

/** gRPC status UNKNOWN, stored for calls that ended without a status. */
export const GRPC_UNKNOWN = 2;
/** OTel: the codes that make a server span an error. */
const SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);
const CALLS_COUNTER = {
  server: "ebpf.grpc.calls.server",
  client: "ebpf.grpc.calls.client",
} as const;
const MAX_METHOD_CACHE = 10_000;
const NO_STATUS_MESSAGE = "no grpc-status (stream reset or connection cut)";
const UNDECODED_MESSAGE =
  "grpc-status sent but not decoded (connection older than the capture)";

/** A call without any grpc-status (stream reset, connection cut): stored as UNKNOWN, an error. */
export const GRPC_NO_STATUS = -1;
/**
 * A call whose trailers came but could not be decoded (HPACK state of a
 * connection older than the capture): stored as -2, not an error, since
 * nothing says it failed.
 */
export const GRPC_STATUS_UNDECODED = -2;

/**
 * OTel: a server span is an error for UNKNOWN, DEADLINE_EXCEEDED,
 * UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS; a client span for any
 * code but OK. A call without a status (-1) is an error on both sides.
 */
export function isGrpcError(side: CallSide, statusCode: number): boolean {
  if (statusCode === GRPC_STATUS_UNDECODED) return false;
  if (statusCode < 0) return true;
  return side === "client" ? statusCode !== 0 : SERVER_ERRORS.has(statusCode);
}

export class GrpcWindows {
  readonly #counters: Counters;
  readonly #spans: SpanMaker;
  readonly #methods = new Map<string, MethodParts>();
  /** Open window: service → method → status (servers) or status and peer (clients). */
  readonly #window: OpenWindow<Series>;

  constructor(options: GrpcWindowsOptions) {
    this.#counters = options.counters;
    this.#spans = new SpanMaker({ ...options, kind: "grpc" });
    this.#window = new OpenWindow("grpc", options);
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
  add(call: GrpcCall): void {
    this.#counters.add(CALLS_COUNTER[call.side]);
    const status = call.statusCode === GRPC_NO_STATUS
      ? GRPC_UNKNOWN
      : call.statusCode;
    this.#addToSeries(call, status);
    this.#addSpan(call, status);
  }

  /** The spans made since the last call. */
  takeSpans(): SpanRecord[] {
    return this.#spans.take();
  }

  /**
   * Ends the open window at `endMs` (default now): one record per series,
   * latencies in ms. The next window starts at `endMs`.
   */
  closeWindow(endMs = Date.now()): GrpcMetricRecord[] {
    return this.#window.close(endMs, (s, window) => ({
      ...window,
      method: s.method,
      statusCode: s.statusCode,
    }));
  }

  #addToSeries(c: GrpcCall, status: number): void {
    const client = c.side === "client";
    const byCall = this.#window.group(c.serviceName, c.method);
    // Servers by the status number; clients (a string) also by their peer.
    const key = client
      ? `${status} ${c.remoteAddress} ${c.remotePort}`
      : status;
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
        method: c.method,
        statusCode: status,
        attributes,
        histogram: new LogLinearHistogram(),
      };
      this.#window.insert(byCall, key, series);
    }
    series.histogram.record(c.durationNs);
  }

  #addSpan(c: GrpcCall, status: number): void {
    const error = isGrpcError(c.side, c.statusCode);
    const spans = this.#spans;
    if (!spans.admit(error, c.traceparent)) return;
    // One literal per side: objects of one shape are cheaper to build and store.
    const attributes: Attributes = c.side === "server"
      ? {
        "rpc.system": "grpc",
        "rpc.grpc.status_code": status,
        "server.port": c.localPort,
        "client.address": c.remoteAddress,
        "client.port": c.remotePort,
      }
      : {
        "rpc.system": "grpc",
        "rpc.grpc.status_code": status,
        "server.address": c.remoteAddress,
        "server.port": c.remotePort,
      };
    if (c.method !== "") {
      const parts = this.#methodParts(c.method);
      if (parts.service !== "") attributes["rpc.service"] = parts.service;
      attributes["rpc.method"] = parts.method;
    }
    spans.addExtra(attributes);
    spans.push({
      traceId: spans.traceId(c.traceparent),
      spanId: spans.spanId(),
      parentSpanId: c.traceparent?.parentSpanId ?? "",
      serviceName: c.serviceName,
      name: c.method === "" ? "grpc" : c.method,
      kind: c.side,
      startTimeUs: c.startTimeUs,
      durationUs: Math.floor(c.durationNs / 1000),
      statusCode: error ? 2 : 0,
      statusMessage: c.statusCode === GRPC_NO_STATUS
        ? NO_STATUS_MESSAGE
        : c.statusCode === GRPC_STATUS_UNDECODED
        ? UNDECODED_MESSAGE
        : "",
      attributes,
      resourceAttributes: spans.resource(c.serviceName, c.pid),
      processPid: c.pid,
      source: "ebpf",
    });
  }

  /** "pkg.Service/Method" → service "pkg.Service", method "Method" (cached). */
  #methodParts(full: string): MethodParts {
    let parts = this.#methods.get(full);
    if (parts === undefined) {
      const slash = full.lastIndexOf("/");
      parts = slash < 0
        ? { service: "", method: full }
        : { service: full.slice(0, slash), method: full.slice(slash + 1) };
      if (this.#methods.size >= MAX_METHOD_CACHE) this.#methods.clear();
      this.#methods.set(full, parts);
    }
    return parts;
  }
}
