/**
 * Decoded OTLP metrics → HTTP, gRPC and SQL metric records.
 *
 * Latency histograms are recognised by name (current and older OpenTelemetry
 * names, and Beyla's), converted to milliseconds from their unit, checked,
 * turned from cumulative into delta where needed, and split into columns.
 * Everything else is valid OTLP we do not use: counted per metric name as
 * `otlp.metrics.unused.<name>`, never rejected.
 *
 * Counters (prefix `otlp.metrics.`): `points.received`, `rejected.<reason>`,
 * `unused.<name>`, `empty_delta`, `no_recorded_value`, `missing_sum`, and the
 * cumulative ones of CumulativeTracker (`cumulative_baseline`, …).
 */
import type { BeylaConfig } from "../../config/schema.ts";
import type { Counters } from "../../model/counters.ts";
import {
  type Attributes,
  type AttributeValue,
  type CallSide,
  emptyBatch,
  type LatencyHistogram,
  type RecordBatch,
} from "../../model/records.ts";
import {
  checkExplicit,
  checkExponential,
  type ExplicitHistogramData,
  type ExponentialHistogramData,
  exponentialToExplicit,
  scaleBounds,
} from "../../aggregate/histogram.ts";
import {
  CumulativeTracker,
  type DeltaWindow,
} from "../../aggregate/cumulative.ts";
import { normaliseRoute } from "../../aggregate/routes.ts";
import {
  type DecodedExponentialPoint,
  type DecodedHistogramPoint,
  type DecodedMetric,
  type DecodedMetrics,
  FLAG_NO_RECORDED_VALUE,
  TEMPORALITY_CUMULATIVE,
  TEMPORALITY_DELTA,
} from "./decode_types.ts";
import { setAttribute } from "./decode_values.ts";

export interface MetricTransformOptions {
  beyla: BeylaConfig;
  counters: Counters;
  /**
   * When this agent started (Unix ms; default: now). A cumulative series
   * whose first point started at or after it is new and emitted whole.
   */
  startTimeMs?: number;
  /** Most cumulative series remembered; default 100 000. */
  maxSeries?: number;
}

export interface MetricTransformResult {
  batch: RecordBatch;
  /** OTLP partial_success.rejected_data_points. */
  rejectedDataPoints: number;
  /** OTLP partial_success.error_message; "" when nothing was rejected. */
  errorMessage: string;
  /**
   * Call when `batch` could not be stored: cumulative series go back to
   * their state before this export, so its retry yields the same deltas.
   */
  undo(): void;
}

type Family = "http" | "grpc" | "sql";

/** How a latency metric is stored. */
export interface MetricSpec {
  family: Family;
  side: CallSide;
  /** Milliseconds per unit when the metric has no unit. */
  defaultFactor: number;
  /** dbSystem when the point has none (Beyla's redis.client.duration). */
  dbSystem: string;
}

function spec(
  family: Family,
  side: CallSide,
  defaultFactor: number,
  dbSystem = "",
): MetricSpec {
  return { family, side, defaultFactor, dbSystem };
}

/** Latency metrics we store, by name. Newer names are in seconds. */
export const LATENCY_METRICS: ReadonlyMap<string, MetricSpec> = new Map([
  ["http.server.request.duration", spec("http", "server", 1000)],
  ["http.server.duration", spec("http", "server", 1)],
  ["http.client.request.duration", spec("http", "client", 1000)],
  ["http.client.duration", spec("http", "client", 1)],
  ["rpc.server.call.duration", spec("grpc", "server", 1000)],
  ["rpc.client.call.duration", spec("grpc", "client", 1000)],
  ["rpc.server.duration", spec("grpc", "server", 1)],
  ["rpc.client.duration", spec("grpc", "client", 1)],
  ["db.client.operation.duration", spec("sql", "client", 1000)],
  ["db.client.duration", spec("sql", "client", 1)],
  ["sql.client.duration", spec("sql", "client", 1000)],
  ["redis.client.duration", spec("sql", "client", 1000, "redis")],
]);

/** Milliseconds per unit, for the units a latency can come in. */
const UNIT_FACTORS: ReadonlyMap<string, number> = new Map([
  ["s", 1000],
  ["ms", 1],
  ["us", 0.001],
  ["µs", 0.001], // U+00B5 micro sign
  ["μs", 0.001], // U+03BC Greek mu
  ["ns", 1e-6],
  ["seconds", 1000],
  ["milliseconds", 1],
  ["microseconds", 0.001],
  ["nanoseconds", 1e-6],
]);

const HTTP_COLUMNS = new Set([
  "http.request.method",
  "http.method",
  "http.route",
  "http.response.status_code",
  "http.status_code",
  "url.path",
  "http.target",
]);

const GRPC_COLUMNS = new Set([
  "rpc.method",
  "rpc.service",
  "rpc.grpc.status_code",
  "rpc.status_code",
  "rpc.response.status_code",
]);

const SQL_COLUMNS = new Set([
  "db.system.name",
  "db.system",
  "db.operation.name",
  "db.operation",
  "db.collection.name",
  "db.sql.table",
  "db.mongodb.collection",
  "db.cassandra.table",
  "error.type",
]);

const GRPC_CODES: ReadonlyMap<string, number> = new Map([
  ["OK", 0],
  ["CANCELLED", 1],
  ["UNKNOWN", 2],
  ["INVALID_ARGUMENT", 3],
  ["DEADLINE_EXCEEDED", 4],
  ["NOT_FOUND", 5],
  ["ALREADY_EXISTS", 6],
  ["PERMISSION_DENIED", 7],
  ["RESOURCE_EXHAUSTED", 8],
  ["FAILED_PRECONDITION", 9],
  ["ABORTED", 10],
  ["OUT_OF_RANGE", 11],
  ["UNIMPLEMENTED", 12],
  ["INTERNAL", 13],
  ["UNAVAILABLE", 14],
  ["DATA_LOSS", 15],
  ["UNAUTHENTICATED", 16],
]);

const MAX_UNUSED_NAMES = 1000;
const MAX_NAME_LENGTH = 200;
const MAX_ROUTE_CACHE = 10_000;

/** A status code sent as a number or as a decimal string; 0 otherwise. */
export function statusNumber(v: AttributeValue | undefined): number {
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? v : 0;
  if (typeof v === "string" && v.length > 0 && v.length <= 9) {
    let n = 0;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return 0;
      n = n * 10 + c;
    }
    return n;
  }
  return 0;
}

/** gRPC status as a number, from a number, "14" or "UNAVAILABLE". */
function grpcStatus(v: AttributeValue | undefined): number {
  if (typeof v !== "string") return statusNumber(v);
  if (v === "") return 0;
  const named = GRPC_CODES.get(v.toUpperCase());
  if (named !== undefined) return named;
  const n = statusNumber(v);
  // Not a gRPC code we know (e.g. a JSON-RPC "-32602"): UNKNOWN.
  return n === 0 && v !== "0" ? 2 : n;
}

/** "package.Service/Method" from rpc.service and rpc.method. */
function fullMethod(service: string, method: string): string {
  if (method.includes("/") || service === "") return method;
  return method === "" ? service : service + "/" + method;
}

function text(v: AttributeValue | undefined): string {
  return v === undefined ? "" : typeof v === "string" ? v : String(v);
}

/** A stable key for an attribute set, independent of key order. */
function attributesKey(a: Attributes): string {
  const keys = Object.keys(a);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let key = "";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    key += k + "\u0001" + a[k] + "\u0002";
  }
  return key;
}

function serviceName(resource: Attributes): string {
  const name = resource["service.name"];
  return typeof name === "string" && name !== "" ? name : "unknown_service";
}

function pointCount(m: DecodedMetric): number {
  return m.type === "histogram" || m.type === "exponentialHistogram"
    ? m.points.length
    : m.pointCount;
}

/**
 * Stateful (cumulative series are remembered between exports): one instance
 * per agent, fed every metrics export in order.
 *
 * @example
 * const transformer = new MetricTransformer({ beyla, counters });
 * const { batch, rejectedDataPoints } = transformer.transform(decoded);
 */
export class MetricTransformer {
  readonly #beyla: BeylaConfig;
  readonly #counters: Counters;
  readonly #tracker: CumulativeTracker;
  readonly #extra: [string, string][];
  readonly #unusedNames = new Set<string>();
  readonly #routes = new Map<string, string>();
  #lastRawBounds: number[] | null = null;
  #lastFactor = 0;
  #lastBoundsMs: number[] = [];
  // Per-transform state.
  #rejected = 0;
  #reasons = new Map<string, number>();
  #firstRejectedMetric = "";

  constructor(options: MetricTransformOptions) {
    this.#beyla = options.beyla;
    this.#counters = options.counters;
    this.#extra = Object.entries(options.beyla.attributes);
    this.#tracker = new CumulativeTracker({
      counters: options.counters,
      freshAfterUs: (options.startTimeMs ?? Date.now()) * 1000,
      maxSeries: options.maxSeries,
    });
  }

  /** Number of cumulative series remembered. */
  get seriesCount(): number {
    return this.#tracker.size;
  }

  /**
   * Records for one decoded export. Takes ownership of `req`: its arrays are
   * handed on to records and kept as cumulative state, not copied.
   */
  transform(req: DecodedMetrics): MetricTransformResult {
    const batch = emptyBatch();
    this.#rejected = 0;
    this.#reasons = new Map();
    this.#firstRejectedMetric = "";
    this.#tracker.beginBatch();
    this.#counters.add("otlp.metrics.points.received", req.dataPointCount);

    for (const rm of req.resourceMetrics) {
      const service = serviceName(rm.resource);
      let resourceKey: string | null = null;
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          const found = LATENCY_METRICS.get(m.name);
          if (
            found === undefined ||
            (m.type !== "histogram" && m.type !== "exponentialHistogram")
          ) {
            this.#countUnused(m.name, pointCount(m));
            continue;
          }
          const factor = m.unit === ""
            ? found.defaultFactor
            : UNIT_FACTORS.get(m.unit);
          if (factor === undefined) {
            this.#reject("unsupported_unit", m.name, m.points.length);
            continue;
          }
          const temporality = m.temporality;
          if (
            temporality !== TEMPORALITY_DELTA &&
            temporality !== TEMPORALITY_CUMULATIVE
          ) {
            this.#reject("invalid_temporality", m.name, m.points.length);
            continue;
          }
          let seriesPrefix = "";
          if (temporality === TEMPORALITY_CUMULATIVE) {
            resourceKey ??= attributesKey(rm.resource);
            seriesPrefix = m.name + "\u0000" + sm.scope.name + "\u0000" +
              resourceKey + "\u0000";
          }
          const context: PointContext = {
            spec: found,
            service,
            metric: m.name,
            factor,
            seriesPrefix,
            batch,
          };
          if (m.type === "histogram") {
            for (const p of m.points) this.#explicitPoint(context, p);
          } else {
            for (const p of m.points) this.#exponentialPoint(context, p);
          }
        }
      }
    }

    const undo = this.#tracker.takeUndo();
    return {
      batch,
      rejectedDataPoints: this.#rejected,
      errorMessage: this.#errorMessage(),
      undo: () => this.#tracker.undo(undo),
    };
  }

  /**
   * The point as a delta window: as it came for delta temporality, through
   * the cumulative tracker otherwise. Null when there is nothing to store
   * (a baseline, or a delta of zero requests, counted as empty_delta).
   */
  #delta<T extends { count: number }>(
    c: PointContext,
    p: T & {
      attributes: DecodedHistogramPoint["attributes"];
      startTimeUs: number;
    },
    track: (key: string) => DeltaWindow<T> | null,
  ): { data: T; windowStartUs: number } | null {
    let data: T = p;
    let windowStartUs = p.startTimeUs;
    if (c.seriesPrefix !== "") {
      const window = track(c.seriesPrefix + attributesKey(p.attributes));
      if (window === null) return null;
      data = window.data;
      windowStartUs = window.windowStartUs;
    }
    if (data.count === 0) {
      this.#counters.add("otlp.metrics.empty_delta");
      return null;
    }
    return { data, windowStartUs };
  }

  #explicitPoint(c: PointContext, p: DecodedHistogramPoint): void {
    if (this.#skipPoint(c, p)) return;
    const problem = checkExplicit(p);
    if (problem !== null) return this.#reject(problem, c.metric, 1);
    const delta = this.#delta(c, p, (key) => this.#tracker.explicit(key, p));
    if (delta === null) return;
    const { data, windowStartUs } = delta;
    const histogram: LatencyHistogram = {
      boundsMs: this.#boundsMs(data.explicitBounds, c.factor),
      counts: data.bucketCounts.length === 0 ? [data.count] : data.bucketCounts,
      count: data.count,
      sumMs: this.#sumMs(data, c.factor),
      minMs: finiteOrNull(data.min, c.factor),
      maxMs: finiteOrNull(data.max, c.factor),
    };
    this.#emit(c, p.attributes, p.timeUs, windowStartUs, histogram);
  }

  #exponentialPoint(c: PointContext, p: DecodedExponentialPoint): void {
    if (this.#skipPoint(c, p)) return;
    const problem = checkExponential(p);
    if (problem !== null) return this.#reject(problem, c.metric, 1);
    const delta = this.#delta(
      c,
      p,
      (key) => this.#tracker.exponential(key, p),
    );
    if (delta === null) return;
    const { data, windowStartUs } = delta;
    const buckets = exponentialToExplicit(data, c.factor);
    const histogram: LatencyHistogram = {
      boundsMs: buckets.bounds,
      counts: buckets.counts,
      count: data.count,
      sumMs: this.#sumMs(data, c.factor),
      minMs: finiteOrNull(data.min, c.factor),
      maxMs: finiteOrNull(data.max, c.factor),
    };
    this.#emit(c, p.attributes, p.timeUs, windowStartUs, histogram);
  }

  /** Points without a value, or without a time: true when skipped. */
  #skipPoint(
    c: PointContext,
    p: DecodedHistogramPoint | DecodedExponentialPoint,
  ): boolean {
    if ((p.flags & FLAG_NO_RECORDED_VALUE) !== 0) {
      this.#counters.add("otlp.metrics.no_recorded_value");
      if (c.seriesPrefix !== "") {
        this.#tracker.forget(c.seriesPrefix + attributesKey(p.attributes));
      }
      return true;
    }
    if (p.timeUs === 0 && p.timeExtraNs === 0) {
      this.#reject("missing_time", c.metric, 1);
      return true;
    }
    return false;
  }

  #sumMs(data: ExplicitHistogramData | ExponentialHistogramData, f: number) {
    if (data.sum === null) {
      this.#counters.add("otlp.metrics.missing_sum");
      return 0;
    }
    return data.sum * f;
  }

  #boundsMs(raw: number[], factor: number): number[] {
    const last = this.#lastRawBounds;
    if (last !== null && factor === this.#lastFactor) {
      if (last === raw) return this.#lastBoundsMs;
      if (last.length === raw.length) {
        let same = true;
        for (let i = 0; i < raw.length; i++) {
          if (raw[i] !== last[i]) {
            same = false;
            break;
          }
        }
        if (same) return this.#lastBoundsMs;
      }
    }
    this.#lastRawBounds = raw;
    this.#lastFactor = factor;
    this.#lastBoundsMs = scaleBounds(raw, factor);
    return this.#lastBoundsMs;
  }

  #emit(
    c: PointContext,
    a: Attributes,
    timeUs: number,
    windowStartUs: number,
    histogram: LatencyHistogram,
  ): void {
    const timestampMs = Math.floor(timeUs / 1000);
    const windowStartMs = windowStartUs === 0
      ? timestampMs
      : Math.floor(windowStartUs / 1000);
    const spec = c.spec;
    switch (spec.family) {
      case "http":
        c.batch.http.push({
          timestampMs,
          windowStartMs,
          serviceName: c.service,
          side: spec.side,
          histogram,
          attributes: this.#rest(a, HTTP_COLUMNS),
          source: "otlp",
          method: text(a["http.request.method"] ?? a["http.method"]),
          route: this.#route(a),
          statusCode: statusNumber(
            a["http.response.status_code"] ?? a["http.status_code"],
          ),
        });
        return;
      case "grpc":
        c.batch.grpc.push({
          timestampMs,
          windowStartMs,
          serviceName: c.service,
          side: spec.side,
          histogram,
          attributes: this.#rest(a, GRPC_COLUMNS),
          source: "otlp",
          method: fullMethod(text(a["rpc.service"]), text(a["rpc.method"])),
          statusCode: grpcStatus(
            a["rpc.grpc.status_code"] ?? a["rpc.status_code"] ??
              a["rpc.response.status_code"],
          ),
        });
        return;
      case "sql":
        c.batch.sql.push({
          timestampMs,
          windowStartMs,
          serviceName: c.service,
          side: spec.side,
          histogram,
          attributes: this.#rest(a, SQL_COLUMNS),
          source: "otlp",
          dbSystem: text(a["db.system.name"] ?? a["db.system"]) ||
            spec.dbSystem,
          operation: text(a["db.operation.name"] ?? a["db.operation"]),
          table: text(
            a["db.collection.name"] ?? a["db.sql.table"] ??
              a["db.mongodb.collection"] ?? a["db.cassandra.table"],
          ),
          errorType: text(a["error.type"]),
        });
        return;
    }
  }

  #route(a: Attributes): string {
    const route = a["http.route"];
    if (typeof route === "string" && route !== "") return route;
    const path = a["url.path"] ?? a["http.target"];
    if (typeof path !== "string" || path === "") return "";
    let cached = this.#routes.get(path);
    if (cached === undefined) {
      cached = normaliseRoute(path, this.#beyla.protocols.http.route_patterns);
      if (this.#routes.size >= MAX_ROUTE_CACHE) this.#routes.clear();
      this.#routes.set(path, cached);
    }
    return cached;
  }

  /** Attributes not held in a column, plus `beyla.attributes`. */
  #rest(a: Attributes, columns: ReadonlySet<string>): Attributes {
    const out: Attributes = {};
    const keys = Object.keys(a);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (!columns.has(k)) setAttribute(out, k, a[k]!);
    }
    const extra = this.#extra;
    for (let i = 0; i < extra.length; i++) {
      const [k, v] = extra[i]!;
      if (!Object.hasOwn(out, k) && !columns.has(k)) out[k] = v;
    }
    return out;
  }

  #countUnused(name: string, points: number): void {
    if (points === 0) return;
    let counted = name === "" ? "unnamed" : name.slice(0, MAX_NAME_LENGTH);
    if (!this.#unusedNames.has(counted)) {
      if (this.#unusedNames.size >= MAX_UNUSED_NAMES) counted = "other";
      else this.#unusedNames.add(counted);
    }
    this.#counters.add(`otlp.metrics.unused.${counted}`, points);
  }

  #reject(reason: string, metric: string, points: number): void {
    if (points === 0) return;
    this.#rejected += points;
    this.#reasons.set(reason, (this.#reasons.get(reason) ?? 0) + points);
    if (this.#firstRejectedMetric === "") this.#firstRejectedMetric = metric;
    this.#counters.add(`otlp.metrics.rejected.${reason}`, points);
  }

  #errorMessage(): string {
    if (this.#rejected === 0) return "";
    const reasons = [...this.#reasons].map(([r, n]) => `${n} ${r}`).join(", ");
    const metric = this.#firstRejectedMetric.slice(0, MAX_NAME_LENGTH);
    return `${this.#rejected} data point(s) rejected: ${reasons} (first in ${
      JSON.stringify(metric)
    })`;
  }
}

interface PointContext {
  spec: MetricSpec;
  service: string;
  metric: string;
  factor: number;
  /** "" for delta metrics; else the series key up to the point attributes. */
  seriesPrefix: string;
  batch: RecordBatch;
}

function finiteOrNull(v: number | null, factor: number): number | null {
  return v === null || !Number.isFinite(v) ? null : v * factor;
}
