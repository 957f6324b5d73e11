/**
 * Read queries over the store, shared by the agent's query API and the
 * CLI's `--db FILE`. Every function takes a connection (`store.connection`)
 * and returns plain JSON-ready objects: numbers, never bigint.
 *
 * RED queries aggregate in SQL: one scan groups rows by series key, status
 * (or error type) and bound set, summing each bucket index; TypeScript then
 * merges the few resulting rows per series and computes percentiles
 * (`../aggregate/percentiles.ts`).
 *
 * Time windows: a metric row counts when its window END lies in
 * (sinceMs, nowMs]; rps = requests / ((nowMs − sinceMs) / 1000).
 *
 * @module
 */
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import {
  type Histogram,
  mergeHistograms,
  percentile,
} from "../aggregate/percentiles.ts";
import {
  DATA_TABLES,
  type DataTable,
  type MetricTable,
  readMeta,
  TIME_COLUMN,
} from "./schema.ts";

export type Side = "server" | "client";

/** Which rows a RED query aggregates. Times are Unix milliseconds. */
export interface RedFilter {
  /** Only this service (exact match). */
  service?: string;
  /** Window start (exclusive), Unix ms: an absolute time, not a length. */
  sinceMs: number;
  /** Window end (inclusive), Unix ms. */
  nowMs: number;
  /**
   * Only this series: `http_route` for HTTP, `grpc_method` for gRPC,
   * `table_name` for SQL (exact match).
   */
  route?: string;
  /**
   * Which side's metrics. HTTP and gRPC default to "server"; SQL filters
   * only when given (database calls are usually client-side).
   */
  side?: Side;
  /** Only rows of this agent (`agent_id`, exact match). */
  agent?: string;
  /** One row per agent and series, each with an `agent` field (the colony). */
  byAgent?: boolean;
}

/** Fields every RED row has. Percentiles are null without requests. */
export interface RedStats {
  /** The agent of the row (the colony's answers only). */
  agent?: string;
  requests: number;
  /** requests per second over the whole window. */
  rps: number;
  errors: number;
  /** errors / requests, 0..1 (0 without requests). */
  error_rate: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
}

export interface HttpRedRow extends RedStats {
  service: string;
  method: string;
  route: string;
  /** Requests per status code ("200", "503", "0" = no response). */
  status_codes: Record<string, number>;
}

export interface GrpcRedRow extends RedStats {
  service: string;
  grpc_method: string;
  /** Requests per gRPC status code number ("0" = OK). */
  status_codes: Record<string, number>;
}

export interface SqlRedRow extends RedStats {
  service: string;
  db_system: string;
  operation: string;
  table: string;
  /** Failed calls per `error.type`. */
  error_types: Record<string, number>;
}

/**
 * One row per series, sorted by requests (descending), then by name; and
 * the total over all of them, whose key fields are "".
 */
export interface RedResult<R> {
  rows: R[];
  total: R;
}

/** gRPC codes that count as server errors (OTel semantic conventions). */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

interface RedSpec {
  table: MetricTable;
  /** Series key columns, in output order. */
  keys: readonly string[];
  /** Column whose values are counted separately (status or error type). */
  breakdown: string;
  routeColumn: string;
  defaultSide: Side | undefined;
  isError(side: Side | undefined, breakdown: string | number): boolean;
}

const HTTP: RedSpec = {
  table: "beyla_http_metrics",
  keys: ["service_name", "http_method", "http_route"],
  breakdown: "http_status_code",
  routeColumn: "http_route",
  defaultSide: "server",
  isError: (side, code) => Number(code) >= (side === "client" ? 400 : 500),
};

const GRPC: RedSpec = {
  table: "beyla_grpc_metrics",
  keys: ["service_name", "grpc_method"],
  breakdown: "grpc_status_code",
  routeColumn: "grpc_method",
  defaultSide: "server",
  isError: (side, code) =>
    side === "client"
      ? Number(code) !== 0
      : GRPC_SERVER_ERRORS.has(Number(code)),
};

const SQL: RedSpec = {
  table: "beyla_sql_metrics",
  keys: ["service_name", "db_system", "sql_operation", "table_name"],
  breakdown: "error_type",
  routeColumn: "table_name",
  defaultSide: undefined,
  isError: (_side, errorType) => errorType !== "",
};

/** RED metrics of HTTP series, one row per (service, method, route). */
export async function queryHttp(
  conn: DuckDBConnection,
  filter: RedFilter,
): Promise<RedResult<HttpRedRow>> {
  const red = await queryRed(conn, HTTP, filter);
  const row = (s: SeriesTotals): HttpRedRow => ({
    ...agentField(s),
    service: String(s.keys[0]),
    method: String(s.keys[1]),
    route: String(s.keys[2]),
    ...s.stats,
    status_codes: s.breakdown,
  });
  return {
    rows: red.series.map(row).sort((a, b) =>
      b.requests - a.requests || a.service.localeCompare(b.service) ||
      a.route.localeCompare(b.route) || a.method.localeCompare(b.method)
    ),
    total: row(red.total),
  };
}

/** RED metrics of gRPC series, one row per (service, method). */
export async function queryGrpc(
  conn: DuckDBConnection,
  filter: RedFilter,
): Promise<RedResult<GrpcRedRow>> {
  const red = await queryRed(conn, GRPC, filter);
  const row = (s: SeriesTotals): GrpcRedRow => ({
    ...agentField(s),
    service: String(s.keys[0]),
    grpc_method: String(s.keys[1]),
    ...s.stats,
    status_codes: s.breakdown,
  });
  return {
    rows: red.series.map(row).sort((a, b) =>
      b.requests - a.requests || a.service.localeCompare(b.service) ||
      a.grpc_method.localeCompare(b.grpc_method)
    ),
    total: row(red.total),
  };
}

/** RED metrics of SQL/Redis series, one row per (service, db, operation, table). */
export async function querySql(
  conn: DuckDBConnection,
  filter: RedFilter,
): Promise<RedResult<SqlRedRow>> {
  const red = await queryRed(conn, SQL, filter);
  const row = (s: SeriesTotals): SqlRedRow => {
    const errorTypes: Record<string, number> = {};
    for (const [type, n] of Object.entries(s.breakdown)) {
      if (type !== "") errorTypes[type] = n;
    }
    return {
      ...agentField(s),
      service: String(s.keys[0]),
      db_system: String(s.keys[1]),
      operation: String(s.keys[2]),
      table: String(s.keys[3]),
      ...s.stats,
      error_types: errorTypes,
    };
  };
  return {
    rows: red.series.map(row).sort((a, b) =>
      b.requests - a.requests || a.service.localeCompare(b.service) ||
      a.operation.localeCompare(b.operation) ||
      a.table.localeCompare(b.table) || a.db_system.localeCompare(b.db_system)
    ),
    total: row(red.total),
  };
}

interface SeriesTotals {
  /** The agent of the series when grouped by agent. */
  agent?: string;
  keys: (string | number)[];
  stats: RedStats;
  breakdown: Record<string, number>;
}

/** `{ agent }` for rows grouped by agent, else nothing. */
function agentField(s: SeriesTotals): { agent?: string } {
  return s.agent === undefined ? {} : { agent: s.agent };
}

/** Accumulates one series (or the total) from grouped SQL rows. */
class SeriesAccumulator {
  requests = 0;
  errors = 0;
  breakdown: Record<string, number> = {};
  parts: Histogram[] = [];
  minKnown = true;
  min = Infinity;
  maxKnown = true;
  max = -Infinity;

  constructor(
    readonly keys: (string | number)[],
    readonly agent?: string,
  ) {}

  add(row: GroupRow, isError: boolean): void {
    this.requests += row.requests;
    if (isError) this.errors += row.requests;
    const label = String(row.breakdown);
    this.breakdown[label] = (this.breakdown[label] ?? 0) + row.requests;
    this.parts.push(row.histogram);
    if (row.min === null) this.minKnown = false;
    else this.min = Math.min(this.min, row.min);
    if (row.max === null) this.maxKnown = false;
    else this.max = Math.max(this.max, row.max);
  }

  totals(windowMs: number): SeriesTotals {
    const extremes = {
      min: this.minKnown && this.parts.length > 0 ? this.min : null,
      max: this.maxKnown && this.parts.length > 0 ? this.max : null,
    };
    const merged = mergeHistograms(this.parts, extremes);
    const p = (q: number) =>
      percentile(merged.bounds, merged.counts, q, extremes);
    return {
      ...(this.agent === undefined ? {} : { agent: this.agent }),
      keys: this.keys,
      stats: {
        requests: this.requests,
        rps: windowMs > 0 ? this.requests / (windowMs / 1000) : 0,
        errors: this.errors,
        error_rate: this.requests > 0 ? this.errors / this.requests : 0,
        p50_ms: p(0.5),
        p95_ms: p(0.95),
        p99_ms: p(0.99),
      },
      breakdown: this.breakdown,
    };
  }
}

interface GroupRow {
  keys: (string | number)[];
  breakdown: string | number;
  requests: number;
  histogram: Histogram;
  min: number | null;
  max: number | null;
}

async function queryRed(
  conn: DuckDBConnection,
  spec: RedSpec,
  filter: RedFilter,
): Promise<{ series: SeriesTotals[]; total: SeriesTotals }> {
  const side = filter.side ?? spec.defaultSide;
  const params: DuckDBValue[] = [];
  const where = [
    `timestamp > ${timestampLiteral(filter.sinceMs)}`,
    `timestamp <= ${timestampLiteral(filter.nowMs)}`,
  ];
  if (side !== undefined) {
    params.push(side);
    where.push(`span_kind = $${params.length}`);
  }
  if (filter.service !== undefined) {
    params.push(filter.service);
    where.push(`service_name = $${params.length}`);
  }
  if (filter.route !== undefined) {
    params.push(filter.route);
    where.push(`${spec.routeColumn} = $${params.length}`);
  }
  if (filter.agent !== undefined) {
    params.push(filter.agent);
    where.push(`agent_id = $${params.length}`);
  }
  const byAgent = filter.byAgent === true;
  const whereSql = where.join(" AND ");
  const windowMs = filter.nowMs - filter.sinceMs;
  const totalAcc = new SeriesAccumulator(spec.keys.map(() => ""));

  const widest = await conn.runAndReadAll(
    `SELECT coalesce(max(len(latency_counts)), 0)::INTEGER
     FROM ${spec.table} WHERE ${whereSql}`,
    params,
  );
  const buckets = Number(widest.getRows()[0]?.[0] ?? 0);
  if (buckets === 0) return { series: [], total: totalAcc.totals(windowMs) };

  const sums = Array.from(
    { length: buckets },
    (_, i) => `coalesce(sum(latency_counts[${i + 1}]), 0)::DOUBLE`,
  ).join(", ");
  const keys = (byAgent ? ["agent_id", ...spec.keys] : spec.keys).join(", ");
  const reader = await conn.runAndReadAll(
    `SELECT ${keys}, ${spec.breakdown} AS breakdown,
       any_value(latency_buckets_ms) AS bounds,
       sum(request_count)::DOUBLE AS requests,
       count(latency_min_ms) = count(*) AS min_known,
       min(latency_min_ms) AS min_ms,
       count(latency_max_ms) = count(*) AS max_known,
       max(latency_max_ms) AS max_ms,
       [${sums}] AS counts
     FROM ${spec.table} WHERE ${whereSql}
     GROUP BY ${keys}, ${spec.breakdown}, hash(latency_buckets_ms),
       len(latency_buckets_ms)`,
    params,
  );
  const bySeries = new Map<string, SeriesAccumulator>();
  for (const row of reader.getRowsJS()) {
    const skip = byAgent ? 1 : 0;
    const keyValues = row.slice(skip, skip + spec.keys.length) as (
      | string
      | number
    )[];
    const [breakdown, bounds, requests, minKnown, min, maxKnown, max, counts] =
      row.slice(skip + spec.keys.length);
    const boundList = (bounds as number[]).map(Number);
    const group: GroupRow = {
      keys: keyValues,
      breakdown: breakdown as string | number,
      requests: Number(requests),
      histogram: {
        bounds: boundList,
        counts: (counts as number[]).slice(0, boundList.length + 1).map(
          Number,
        ),
      },
      min: minKnown === true && min !== null ? Number(min) : null,
      max: maxKnown === true && max !== null ? Number(max) : null,
    };
    const agent = byAgent ? String(row[0]) : undefined;
    const id = JSON.stringify([agent, keyValues]);
    let acc = bySeries.get(id);
    if (acc === undefined) {
      acc = new SeriesAccumulator(keyValues, agent);
      bySeries.set(id, acc);
    }
    const isError = spec.isError(side, group.breakdown);
    acc.add(group, isError);
    totalAcc.add(group, isError);
  }
  return {
    series: [...bySeries.values()].map((acc) => acc.totals(windowMs)),
    total: totalAcc.totals(windowMs),
  };
}

/** A constant SQL timestamp, so DuckDB can skip row groups by zone map. */
function timestampLiteral(ms: number): string {
  if (!Number.isFinite(ms)) {
    throw new RangeError(`Cannot query: time ${ms} is not a finite number`);
  }
  return `make_timestamp(${Math.round(ms * 1000)}::BIGINT)`;
}

/** Which traces `queryTraces` returns. */
export interface TraceFilter {
  /** Traces with a span of this service. */
  service?: string;
  /** Only this trace (32 hex digits). */
  traceId?: string;
  /** Traces with a span that started at or after this time (Unix ms). */
  sinceMs: number;
  /** Traces with a span at least this long. */
  minDurationMs?: number;
  /** At most this many traces (default 100). */
  limit?: number;
  /** Traces with a span of this agent (`agent_id`). */
  agent?: string;
  /** Each span gets an `agent` field (the colony). */
  withAgent?: boolean;
}

export interface TraceSpanRow {
  /** The agent that stored the span (colony answers only). */
  agent?: string;
  trace_id: string;
  span_id: string;
  /** "" for a root span. */
  parent_span_id: string;
  service: string;
  name: string;
  kind: string;
  /** ISO 8601, UTC, microseconds. */
  start_time: string;
  start_time_us: number;
  duration_us: number;
  /** 0 unset, 1 ok, 2 error. */
  status_code: number;
  status_message: string;
  attributes: Record<string, unknown>;
}

export interface TraceRow {
  trace_id: string;
  /** Every stored span of the trace, by start time. */
  spans: TraceSpanRow[];
}

/**
 * Traces with at least one span matching every filter, newest first (by
 * their newest matching span), each with ALL its stored spans.
 */
export async function queryTraces(
  conn: DuckDBConnection,
  filter: TraceFilter,
): Promise<TraceRow[]> {
  const limit = Math.max(0, Math.floor(filter.limit ?? 100));
  if (limit === 0) return [];
  const params: DuckDBValue[] = [];
  const where = [`start_time >= ${timestampLiteral(filter.sinceMs)}`];
  if (filter.service !== undefined) {
    params.push(filter.service);
    where.push(`service_name = $${params.length}`);
  }
  if (filter.agent !== undefined) {
    params.push(filter.agent);
    where.push(`agent_id = $${params.length}`);
  }
  if (filter.traceId !== undefined) {
    params.push(filter.traceId.toLowerCase());
    where.push(`trace_id = $${params.length}`);
  }
  if (filter.minDurationMs !== undefined) {
    if (!Number.isFinite(filter.minDurationMs)) {
      throw new RangeError(
        `Cannot query: minimum duration ${filter.minDurationMs} is not a finite number`,
      );
    }
    where.push(`duration_us >= ${Math.ceil(filter.minDurationMs * 1000)}`);
  }
  const reader = await conn.runAndReadAll(
    `WITH selected AS (
       SELECT trace_id, max(start_time) AS newest FROM beyla_traces
       WHERE ${where.join(" AND ")}
       GROUP BY trace_id
       ORDER BY newest DESC, trace_id
       LIMIT ${limit}
     )
     SELECT t.trace_id, t.span_id, t.parent_span_id, t.service_name,
       t.span_name, t.span_kind,
       strftime(t.start_time, '%Y-%m-%dT%H:%M:%S.%fZ') AS start_time,
       epoch_us(t.start_time)::DOUBLE AS start_time_us,
       t.duration_us::DOUBLE AS duration_us, t.status_code,
       t.status_message, t.attributes::VARCHAR AS attributes, t.agent_id
     FROM beyla_traces t JOIN selected s USING (trace_id)
     ORDER BY s.newest DESC, t.trace_id, t.start_time, t.span_id`,
    params,
  );
  const traces: TraceRow[] = [];
  let current: TraceRow | undefined;
  for (const r of reader.getRowsJS()) {
    const span: TraceSpanRow = {
      ...(filter.withAgent ? { agent: String(r[12]) } : {}),
      trace_id: String(r[0]),
      span_id: String(r[1]),
      parent_span_id: String(r[2]),
      service: String(r[3]),
      name: String(r[4]),
      kind: String(r[5]),
      start_time: String(r[6]),
      start_time_us: Number(r[7]),
      duration_us: Number(r[8]),
      status_code: Number(r[9]),
      status_message: String(r[10]),
      attributes: parseJsonObject(r[11]),
    };
    if (current?.trace_id !== span.trace_id) {
      current = { trace_id: span.trace_id, spans: [] };
      traces.push(current);
    }
    current.spans.push(span);
  }
  return traces;
}

function parseJsonObject(text: unknown): Record<string, unknown> {
  try {
    const value = JSON.parse(String(text));
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value
      : {};
  } catch {
    return {};
  }
}

/** Per-table facts for `status`. Times are Unix ms; null when empty. */
export interface TableStatus {
  rows: number;
  max_seq_id: number;
  oldest_ms: number | null;
  newest_ms: number | null;
}

/** Row counts, highest seq_id and time span of every data table. */
export async function queryStatusRows(
  conn: DuckDBConnection,
): Promise<Record<DataTable, TableStatus>> {
  const reader = await conn.runAndReadAll(
    DATA_TABLES.map((table) => {
      const time = TIME_COLUMN[table];
      return `SELECT '${table}', count(*)::DOUBLE,
        coalesce(max(seq_id), 0)::DOUBLE,
        epoch_ms(min(${time}))::DOUBLE, epoch_ms(max(${time}))::DOUBLE
        FROM ${table}`;
    }).join(" UNION ALL "),
  );
  const out = {} as Record<DataTable, TableStatus>;
  for (const [table, rows, maxSeq, oldest, newest] of reader.getRowsJS()) {
    out[table as DataTable] = {
      rows: Number(rows),
      max_seq_id: Number(maxSeq),
      oldest_ms: oldest === null ? null : Number(oldest),
      newest_ms: newest === null ? null : Number(newest),
    };
  }
  return out;
}

/** The database's identity: `session_id` and `schema_version`. */
export async function queryMeta(
  conn: DuckDBConnection,
): Promise<{ session_id: string; schema_version: number }> {
  return {
    session_id: (await readMeta(conn, "session_id")) ?? "",
    schema_version: Number((await readMeta(conn, "schema_version")) ?? 0),
  };
}
