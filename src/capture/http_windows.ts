/**
 * Turns decoded HTTP exchanges (one request/response pair each) into what
 * the store keeps: per window, one `HttpMetricRecord` per (service, side,
 * method, route, status [, peer for clients]) with a fine log-linear latency
 * histogram; and one `SpanRecord` per exchange, sampled by trace id.
 *
 * Windows are cut by the caller (`closeWindow`, on a timer and at shutdown);
 * an exchange counts in the window open when it is added. Memory is bounded:
 * series per window and spans waiting to be taken each have a limit, and
 * what goes over is counted, not kept.
 *
 * @module
 */
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import type {
  Attributes,
  CallSide,
  HttpMetricRecord,
  SpanRecord,
} from "../model/records.ts";
import { LogLinearHistogram } from "../aggregate/log_linear.ts";
import { type CallWindowsOptions, OpenWindow } from "./window_records.ts";
import { normaliseRoute } from "../aggregate/routes.ts";
import { HTTP_METHODS, type Traceparent } from "../decode/http1.ts";
import { SpanMaker } from "./span_maker.ts";

/** One HTTP request and its response, as the capture saw them. */
export interface HttpExchange {
  serviceName: string;
  pid: number;
  side: CallSide;
  method: string;
  /** Raw path, no query ("/users/42"); "" when unknown. */
  path: string;
  statusCode: number;
  /** Start as Unix microseconds. */
  startTimeUs: number;
  durationNs: number;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Bytes of the whole request (headers and body). */
  requestBytes: number;
  traceparent?: Traceparent;
}

/** Options of {@linkcode HttpWindows}. */
export type HttpWindowsOptions = CallWindowsOptions;

interface Series {
  serviceName: string;
  side: CallSide;
  method: string;
  route: string;
  statusCode: number;
  attributes: Attributes;
  histogram: LogLinearHistogram;
}

const MAX_ROUTE_CACHE = 10_000;
/** Known methods numbered from 1 (0: any other) for series keys. */
const METHOD_NUMBER = new Map([...HTTP_METHODS].map((m, i) => [m, i + 1]));
const REQUESTS_COUNTER = {
  server: "ebpf.http.requests.server",
  client: "ebpf.http.requests.client",
} as const;

/** OTel: a server span is an error from 500, a client span from 400. */
export function isHttpError(side: CallSide, statusCode: number): boolean {
  return statusCode >= (side === "server" ? 500 : 400) || statusCode === 0;
}

export class HttpWindows {
  readonly #beyla: BeylaConfig;
  readonly #counters: Counters;
  readonly #spans: SpanMaker;
  readonly #routes = new Map<string, string>();
  /** Open window: service → route → method/status/side (→ peer for clients). */
  readonly #window: OpenWindow<Series>;

  constructor(options: HttpWindowsOptions) {
    this.#beyla = options.beyla;
    this.#counters = options.counters;
    this.#spans = new SpanMaker({ ...options, kind: "http" });
    this.#window = new OpenWindow("http", options);
  }

  /** Series in the open window. */
  get seriesCount(): number {
    return this.#window.count;
  }

  /** Spans waiting for takeSpans(). */
  get pendingSpans(): number {
    return this.#spans.pending;
  }

  /** Counts one exchange in the open window and makes its span (unless sampled out). */
  add(x: HttpExchange): void {
    this.#counters.add(REQUESTS_COUNTER[x.side]);
    const route = this.#route(x.path);
    this.#addToSeries(x, route);
    this.#addSpan(x, route);
  }

  /** The spans made since the last call. */
  takeSpans(): SpanRecord[] {
    return this.#spans.take();
  }

  /**
   * Ends the open window at `endMs` (default now): one record per series,
   * latencies in ms. The next window starts at `endMs`.
   */
  closeWindow(endMs = Date.now()): HttpMetricRecord[] {
    return this.#window.close(endMs, (s, window) => ({
      ...window,
      method: s.method,
      route: s.route,
      statusCode: s.statusCode,
    }));
  }

  #addToSeries(x: HttpExchange, route: string): void {
    const client = x.side === "client";
    const byCall = this.#window.group(x.serviceName, route);
    // Servers (the hot path) by a number; clients also by their peer.
    const key = client
      ? `${x.method} ${x.statusCode} ${x.remoteAddress} ${x.remotePort}`
      : (METHOD_NUMBER.get(x.method) ?? 0) * 1000 + x.statusCode;
    let series = byCall.get(key);
    if (series === undefined) {
      if (!this.#window.hasRoom()) return;
      const attributes: Attributes = {};
      if (client) {
        attributes["server.address"] = x.remoteAddress;
        attributes["server.port"] = x.remotePort;
      }
      this.#spans.addExtra(attributes);
      series = {
        serviceName: x.serviceName,
        side: x.side,
        method: x.method,
        route,
        statusCode: x.statusCode,
        attributes,
        histogram: new LogLinearHistogram(),
      };
      this.#window.insert(byCall, key, series);
    }
    series.histogram.record(x.durationNs);
  }

  #addSpan(x: HttpExchange, route: string): void {
    const error = isHttpError(x.side, x.statusCode);
    const spans = this.#spans;
    if (!spans.admit(error, x.traceparent)) return;
    // One literal per side: objects of one shape are cheaper to build and store.
    const attributes: Attributes = x.side === "server"
      ? {
        "http.request.method": x.method,
        "url.path": x.path,
        "http.response.status_code": x.statusCode,
        "http.request.size": x.requestBytes,
        "server.port": x.localPort,
        "client.address": x.remoteAddress,
        "client.port": x.remotePort,
      }
      : {
        "http.request.method": x.method,
        "url.path": x.path,
        "http.response.status_code": x.statusCode,
        "http.request.size": x.requestBytes,
        "server.address": x.remoteAddress,
        "server.port": x.remotePort,
      };
    if (route !== "") attributes["http.route"] = route;
    spans.addExtra(attributes);
    spans.push({
      traceId: spans.traceId(x.traceparent),
      spanId: spans.spanId(),
      parentSpanId: x.traceparent?.parentSpanId ?? "",
      serviceName: x.serviceName,
      name: route === "" ? x.method : `${x.method} ${route}`,
      kind: x.side,
      startTimeUs: x.startTimeUs,
      durationUs: Math.floor(x.durationNs / 1000),
      statusCode: error ? 2 : 0,
      statusMessage: "",
      attributes,
      resourceAttributes: spans.resource(x.serviceName, x.pid),
      processPid: x.pid,
      source: "ebpf",
    });
  }

  #route(path: string): string {
    let route = this.#routes.get(path);
    if (route === undefined) {
      route = normaliseRoute(path, this.#beyla.protocols.http.route_patterns);
      if (this.#routes.size >= MAX_ROUTE_CACHE) this.#routes.clear();
      this.#routes.set(path, route);
    }
    return route;
  }
}
