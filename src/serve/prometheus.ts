/**
 * The Prometheus exposition for `GET /metrics`: a `RecordFollower` that adds
 * every committed batch's delta windows into cumulative histograms (monotonic
 * since the process started), rendered in the text format 0.0.4.
 *
 * Families, under the OpenTelemetry → Prometheus names (coral-interfaces §5):
 *
 * | records            | family                                  |
 * |--------------------|-----------------------------------------|
 * | HTTP server/client | `http_server_request_duration_seconds`, `http_client_request_duration_seconds` |
 * | gRPC server/client | `rpc_server_duration_seconds`, `rpc_client_duration_seconds` |
 * | SQL/Redis client   | `db_client_operation_duration_seconds`  |
 * | SQL/Redis server   | `db_server_operation_duration_seconds` (no OTel name exists) |
 *
 * Buckets are the OpenTelemetry defaults in seconds. A record's buckets have
 * their own bounds (milliseconds): each input bucket's count goes into the
 * output bucket that holds the input bucket's upper bound. A value is thus
 * never counted below its true bucket, but a value in an input bucket that
 * straddles an output bound is counted one output bucket too high: for the
 * eBPF log-linear buckets (width ≤ 3.125 %) only values within 3.125 % below
 * an output bound can move. `_sum` and `_count` are exact.
 *
 * The number of series is bounded (`maxSeries`); a record that would open a
 * series over the bound is counted in `prometheus.series_dropped` (and its
 * requests in `prometheus.requests_dropped`), never silently lost. The
 * counters themselves are exposed as `coral_agent_events_total{name=...}`.
 *
 * @example
 * ```ts
 * const exposition = new PrometheusExposition({ counters });
 * sink.follow(exposition);
 * // GET /metrics:
 * new Response(exposition.render(), {
 *   headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
 * });
 * ```
 *
 * @module
 */
import type { Counters } from "../model/counters.ts";
import type {
  Attributes,
  CallSide,
  MetricWindow,
  RecordBatch,
} from "../model/records.ts";
import type { RecordFollower } from "../model/tee_sink.ts";

/** The `Content-Type` of the text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

/** OpenTelemetry's default duration bucket bounds, in seconds. */
export const DEFAULT_BOUNDS_SECONDS: readonly number[] = [
  0,
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
];

/** Series kept unless `maxSeries` says otherwise. */
export const DEFAULT_MAX_SERIES = 10_000;

/** Bounds in milliseconds, as records carry them. */
const BOUNDS_MS = DEFAULT_BOUNDS_SECONDS.map((s) =>
  Number((s * 1000).toPrecision(15))
);
/** Rendered `le` values, "+Inf" last. */
const LE = [...DEFAULT_BOUNDS_SECONDS.map(formatNumber), "+Inf"];
/** Input bounds this close above an output bound count as equal to it. */
const BOUND_SLACK = 1e-9;

interface Family {
  name: string;
  help: string;
}

function family(name: string, help: string): Family {
  return { name, help };
}

const FAMILIES = {
  http: {
    server: family(
      "http_server_request_duration_seconds",
      "Duration of HTTP server requests.",
    ),
    client: family(
      "http_client_request_duration_seconds",
      "Duration of HTTP client requests.",
    ),
  },
  grpc: {
    server: family(
      "rpc_server_duration_seconds",
      "Duration of gRPC server calls.",
    ),
    client: family(
      "rpc_client_duration_seconds",
      "Duration of gRPC client calls.",
    ),
  },
  sql: {
    server: family(
      "db_server_operation_duration_seconds",
      "Duration of database operations seen on the database server's side (SQL, Redis).",
    ),
    client: family(
      "db_client_operation_duration_seconds",
      "Duration of database client operations (SQL, Redis).",
    ),
  },
} as const satisfies Record<string, Record<CallSide, Family>>;

/** Family order in the output. */
const FAMILY_ORDER: readonly Family[] = [
  FAMILIES.http.server,
  FAMILIES.http.client,
  FAMILIES.grpc.server,
  FAMILIES.grpc.client,
  FAMILIES.sql.client,
  FAMILIES.sql.server,
];

export interface PrometheusOptions {
  /** Where `prometheus.series_dropped` is counted; also exposed. */
  counters: Counters;
  /** Most series kept, over all families; default 10 000. */
  maxSeries?: number;
  /**
   * Name of the family the counters are exposed under; default
   * `coral_agent_events_total`. Null: the counters are not exposed.
   */
  eventsMetric?: string | null;
}

/** Label name → value; empty values are left out, as Prometheus would. */
export type Labels = ReadonlyArray<readonly [string, string]>;

interface Series {
  /** Rendered label pairs without braces, e.g. `service_name="a"`. */
  labels: string;
  /** Per output bucket (not cumulative); the last is +Inf. */
  counts: number[];
  count: number;
  sumMs: number;
}

/**
 * Cumulative RED histograms from committed record batches.
 *
 * One instance per process; `observe` is called by the `TeeSink` for every
 * batch the store committed, `render` by `GET /metrics`.
 */
export class PrometheusExposition implements RecordFollower {
  readonly name = "prometheus";
  readonly #counters: Counters;
  readonly #maxSeries: number;
  readonly #eventsMetric: string | null;
  readonly #series = new Map<Family, Map<string, Series>>();
  #seriesCount = 0;

  constructor(options: PrometheusOptions) {
    this.#counters = options.counters;
    this.#maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
    const events = options.eventsMetric === undefined
      ? "coral_agent_events_total"
      : options.eventsMetric;
    this.#eventsMetric = events === null ? null : sanitizeName(events);
  }

  /** Number of series held. */
  get seriesCount(): number {
    return this.#seriesCount;
  }

  /** Adds a committed batch (the `RecordFollower` contract). */
  observe(batch: RecordBatch): void {
    this.observeWith(batch, []);
  }

  /**
   * Adds a batch with extra labels on every series it touches, e.g. a
   * colony's `[["agent_id", id]]`.
   */
  observeWith(batch: RecordBatch, extra: Labels): void {
    for (const r of batch.http) {
      const labels: [string, string][] = [
        ["service_name", r.serviceName],
        ["http_request_method", r.method],
        ["http_route", r.route],
        // 0: no response; OpenTelemetry leaves the attribute out then.
        [
          "http_response_status_code",
          r.statusCode === 0 ? "" : String(r.statusCode),
        ],
      ];
      this.#add(FAMILIES.http[r.side], r, labels, extra);
    }
    for (const r of batch.grpc) {
      const labels: [string, string][] = [
        ["service_name", r.serviceName],
        ["rpc_system", "grpc"],
        ["rpc_method", r.method],
        ["rpc_grpc_status_code", String(r.statusCode)],
      ];
      this.#add(FAMILIES.grpc[r.side], r, labels, extra);
    }
    for (const r of batch.sql) {
      const labels: [string, string][] = [
        ["service_name", r.serviceName],
        ["db_system_name", r.dbSystem],
        ["db_operation_name", r.operation],
        ["db_collection_name", r.table],
        ["error_type", r.errorType],
      ];
      this.#add(FAMILIES.sql[r.side], r, labels, extra);
    }
  }

  #add(
    family: Family,
    record: MetricWindow,
    labels: [string, string][],
    extra: Labels,
  ): void {
    if (record.side === "client") peerLabels(record.attributes, labels);
    for (const [name, value] of extra) {
      // A clash would make the series invalid: the record's own label wins.
      if (!labels.some((l) => l[0] === name)) labels.push([name, value]);
    }
    const key = renderLabels(labels);
    let byLabels = this.#series.get(family);
    if (byLabels === undefined) {
      byLabels = new Map();
      this.#series.set(family, byLabels);
    }
    let series = byLabels.get(key);
    const h = record.histogram;
    if (series === undefined) {
      if (this.#seriesCount >= this.#maxSeries) {
        this.#counters.add("prometheus.series_dropped");
        this.#counters.add("prometheus.requests_dropped", h.count);
        return;
      }
      series = {
        labels: key,
        counts: new Array<number>(LE.length).fill(0),
        count: 0,
        sumMs: 0,
      };
      byLabels.set(key, series);
      this.#seriesCount++;
    }
    rebucket(h.boundsMs, h.counts, series.counts);
    let count = 0;
    for (let i = 0; i < h.counts.length; i++) count += h.counts[i]!;
    series.count += count;
    if (Number.isFinite(h.sumMs)) series.sumMs += h.sumMs;
  }

  /** The text exposition (format 0.0.4) of everything observed so far. */
  render(): string {
    const out: string[] = [];
    for (const family of FAMILY_ORDER) {
      const byLabels = this.#series.get(family);
      if (byLabels === undefined || byLabels.size === 0) continue;
      const name = family.name;
      out.push(`# HELP ${name} ${escapeHelp(family.help)}`);
      out.push(`# TYPE ${name} histogram`);
      const keys = [...byLabels.keys()].sort();
      for (const key of keys) {
        const s = byLabels.get(key)!;
        const prefix = s.labels === "" ? "" : s.labels + ",";
        let cumulative = 0;
        for (let i = 0; i < LE.length; i++) {
          cumulative += s.counts[i]!;
          out.push(`${name}_bucket{${prefix}le="${LE[i]}"} ${cumulative}`);
        }
        const braces = s.labels === "" ? "" : `{${s.labels}}`;
        out.push(`${name}_sum${braces} ${formatNumber(s.sumMs / 1000)}`);
        out.push(`${name}_count${braces} ${s.count}`);
      }
    }
    const events = this.#eventsMetric;
    if (events !== null) {
      const snapshot = Object.entries(this.#counters.snapshot());
      if (snapshot.length > 0) {
        out.push(
          `# HELP ${events} Events counted by coral-agent, by counter name (see status).`,
        );
        out.push(`# TYPE ${events} counter`);
        for (const [name, value] of snapshot) {
          out.push(
            `${events}{name="${escapeLabelValue(name)}"} ${
              formatNumber(value)
            }`,
          );
        }
      }
    }
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}

/**
 * The `GET /metrics` answer for an exposition, e.g. for a route table:
 * `{ "/metrics": () => metricsResponse(exposition) }`.
 */
export function metricsResponse(source: { render(): string }): Response {
  return new Response(source.render(), {
    headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
  });
}

/** `server_address`/`server_port` from a client record's attributes. */
function peerLabels(a: Attributes, labels: [string, string][]): void {
  const address = a["server.address"];
  if (address !== undefined) labels.push(["server_address", String(address)]);
  const port = a["server.port"];
  if (port !== undefined) labels.push(["server_port", String(port)]);
}

/**
 * Adds each input bucket's count to the output bucket (OpenTelemetry
 * default bounds) that holds the input bucket's upper bound.
 */
export function rebucket(
  boundsMs: readonly number[],
  counts: readonly number[],
  into: number[],
): void {
  let j = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    if (i >= boundsMs.length) {
      into[BOUNDS_MS.length] = into[BOUNDS_MS.length]! + c;
      continue;
    }
    const upper = boundsMs[i]!;
    // Input bounds ascend, so j only moves forward.
    while (
      j < BOUNDS_MS.length &&
      upper > BOUNDS_MS[j]! + Math.abs(BOUNDS_MS[j]!) * BOUND_SLACK
    ) j++;
    into[j] = into[j]! + c;
  }
}

/** `k="v",...` for the non-empty values, names sanitized, values escaped. */
export function renderLabels(labels: Labels): string {
  let out = "";
  for (const [name, value] of labels) {
    if (value === "") continue;
    if (out !== "") out += ",";
    out += `${sanitizeName(name)}="${escapeLabelValue(value)}"`;
  }
  return out;
}

const VALID_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A valid metric or label name: `[a-zA-Z_][a-zA-Z0-9_]*`. */
export function sanitizeName(name: string): string {
  if (VALID_NAME.test(name)) return name;
  const clean = name.replace(/[^a-zA-Z0-9_]/g, "_");
  return clean === "" || /^[0-9]/.test(clean) ? "_" + clean : clean;
}

const NEEDS_ESCAPE = /[\\"\n]/;

/** Label value escaping of the text format: `\\`, `\"`, `\n`. */
export function escapeLabelValue(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(
    /[\\"\n]/g,
    (c) => c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n",
  );
}

/** HELP text escaping: `\\` and `\n`. */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\\" ? "\\\\" : "\\n");
}

/** A sample value as Go's ParseFloat reads it. */
function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
