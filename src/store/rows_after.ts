/**
 * Reading stored rows by seq_id, for whoever ships them elsewhere: the
 * colony forwarder (rows with every column, `coral.colony.v1` push rows)
 * and the `QueryEbpfMetrics` RPC (Coral's smaller `coral.agent.v1` pull
 * messages).
 *
 *     const rows = await readRowsAfter(store.connection, "http", {
 *       afterSeq: 41,
 *       limit: 5000,
 *     });
 *     const push = rows.map((row) => toPushRow("http", row));
 *
 * Reads run on the store's read connection (`store.connection`): they see
 * committed rows only and never wait for a write.
 *
 * Mapping to the Coral pull messages (what has no field of its own goes to
 * `attributes`, every value a string):
 * - metric rows: `span.kind` = side ("server"/"client"), plus the row's own
 *   attributes (numbers and booleans as text);
 * - SQL: `db.system.name` = db_system, `error.type` = error_type (only when
 *   not ""); `query_count` = request_count;
 * - gRPC status: `grpc_status_code` is uint32, so the agent's -1 (no status
 *   was sent) becomes 2 (UNKNOWN) and -2 (status not decodable) becomes 0,
 *   each with `coral.grpc.status` = "no_status" / "undecoded" so a reader
 *   can tell them apart;
 * - HTTP `http_status_code`: 0 stays 0 (no response);
 * - `latency_buckets` are the finite bounds (ms); `latency_counts` has one
 *   more entry, the +Inf bucket, as in the store;
 * - spans: `start_time` in ms (floor), the exact start in
 *   `coral.start_time_us`; a non-empty status message in
 *   `otel.status_description`; resource attributes are not carried.
 *
 * @module
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import type { RecordKind } from "./store.ts";

/** Columns every metric row has. Times are Unix ms, latencies ms. */
export interface StoredMetricRow {
  seqId: number;
  timestampMs: number;
  windowStartMs: number;
  serviceName: string;
  /** "server" or "client". */
  side: string;
  boundsMs: number[];
  /** One more than `boundsMs`: the last is +Inf. */
  counts: number[];
  count: number;
  sumMs: number;
  minMs: number | null;
  maxMs: number | null;
  /** JSON object text; values keep their types. */
  attributesJson: string;
  source: string;
}

export interface StoredHttpRow extends StoredMetricRow {
  method: string;
  route: string;
  statusCode: number;
}

export interface StoredGrpcRow extends StoredMetricRow {
  method: string;
  statusCode: number;
}

export interface StoredSqlRow extends StoredMetricRow {
  dbSystem: string;
  operation: string;
  table: string;
  errorType: string;
}

export interface StoredSpanRow {
  seqId: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  serviceName: string;
  name: string;
  kind: string;
  startTimeUs: number;
  durationUs: number;
  statusCode: number;
  statusMessage: string;
  attributesJson: string;
  resourceAttributesJson: string;
  processPid: number;
  source: string;
}

/** The stored row type of each record kind. */
export interface StoredRows {
  http: StoredHttpRow;
  grpc: StoredGrpcRow;
  sql: StoredSqlRow;
  spans: StoredSpanRow;
}

export interface RowsAfterOptions {
  /** Rows with a seq_id greater than this (0: from the first). */
  afterSeq: number;
  /** At most this many rows, lowest seq_ids first. */
  limit: number;
  /** Only these services (empty or absent: all). */
  services?: readonly string[];
  /** Spans only: only this trace. */
  traceId?: string;
}

const TABLES: Record<RecordKind, string> = {
  http: "beyla_http_metrics",
  grpc: "beyla_grpc_metrics",
  sql: "beyla_sql_metrics",
  spans: "beyla_traces",
};

const METRIC_COLUMNS = `seq_id::DOUBLE, epoch_us(timestamp)::DOUBLE,
  epoch_us(window_start)::DOUBLE, service_name, span_kind,
  latency_buckets_ms, latency_counts::DOUBLE[], request_count::DOUBLE,
  latency_sum_ms, latency_min_ms, latency_max_ms, attributes::VARCHAR, source`;

const KEY_COLUMNS: Record<Exclude<RecordKind, "spans">, string> = {
  http: "http_method, http_route, http_status_code",
  grpc: "grpc_method, grpc_status_code",
  sql: "db_system, sql_operation, table_name, error_type",
};

const SPAN_COLUMNS = `seq_id::DOUBLE, trace_id, span_id, parent_span_id,
  service_name, span_name, span_kind, epoch_us(start_time)::DOUBLE,
  duration_us::DOUBLE, status_code, status_message, attributes::VARCHAR,
  resource_attributes::VARCHAR, process_pid, source`;

/**
 * Rows of `kind`'s table with seq_id > `afterSeq`, ascending by seq_id, at
 * most `limit`.
 */
export async function readRowsAfter<K extends RecordKind>(
  conn: DuckDBConnection,
  kind: K,
  options: RowsAfterOptions,
): Promise<StoredRows[K][]> {
  const { afterSeq, limit } = options;
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) {
    throw new RangeError(
      `Cannot read rows: seq_id ${afterSeq} is not a whole number ≥ 0`,
    );
  }
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(
      `Cannot read rows: limit ${limit} is not a whole number ≥ 0`,
    );
  }
  if (limit === 0) return [];
  const params: string[] = [];
  const where = [`seq_id > ${afterSeq}`];
  const services = options.services ?? [];
  if (services.length > 0) {
    const marks = services.map((s) => {
      params.push(s);
      return `$${params.length}`;
    });
    where.push(`service_name IN (${marks.join(", ")})`);
  }
  if (kind === "spans" && options.traceId !== undefined) {
    params.push(options.traceId.toLowerCase());
    where.push(`trace_id = $${params.length}`);
  }
  const columns = kind === "spans"
    ? SPAN_COLUMNS
    : `${METRIC_COLUMNS}, ${KEY_COLUMNS[kind as Exclude<RecordKind, "spans">]}`;
  const reader = await conn.runAndReadAll(
    `SELECT ${columns} FROM ${TABLES[kind]} WHERE ${where.join(" AND ")}
     ORDER BY seq_id LIMIT ${limit}`,
    params,
  );
  const rows = reader.getRowsJS();
  if (kind === "spans") return rows.map(spanRow) as StoredRows[K][];
  return rows.map((r) => {
    const base = metricRow(r);
    const k = r.slice(13);
    switch (kind) {
      case "http":
        return {
          ...base,
          method: String(k[0]),
          route: String(k[1]),
          statusCode: Number(k[2]),
        };
      case "grpc":
        return { ...base, method: String(k[0]), statusCode: Number(k[1]) };
      default:
        return {
          ...base,
          dbSystem: String(k[0]),
          operation: String(k[1]),
          table: String(k[2]),
          errorType: String(k[3]),
        };
    }
  }) as StoredRows[K][];
}

function metricRow(r: unknown[]): StoredMetricRow {
  return {
    seqId: Number(r[0]),
    timestampMs: Number(r[1]) / 1000,
    windowStartMs: Number(r[2]) / 1000,
    serviceName: String(r[3]),
    side: String(r[4]),
    boundsMs: (r[5] as unknown[]).map(Number),
    counts: (r[6] as unknown[]).map(Number),
    count: Number(r[7]),
    sumMs: Number(r[8]),
    minMs: r[9] === null ? null : Number(r[9]),
    maxMs: r[10] === null ? null : Number(r[10]),
    attributesJson: String(r[11]),
    source: String(r[12]),
  };
}

function spanRow(r: unknown[]): StoredSpanRow {
  return {
    seqId: Number(r[0]),
    traceId: String(r[1]),
    spanId: String(r[2]),
    parentSpanId: String(r[3]),
    serviceName: String(r[4]),
    name: String(r[5]),
    kind: String(r[6]),
    startTimeUs: Number(r[7]),
    durationUs: Number(r[8]),
    statusCode: Number(r[9]),
    statusMessage: String(r[10]),
    attributesJson: String(r[11]),
    resourceAttributesJson: String(r[12]),
    processPid: Number(r[13]),
    source: String(r[14]),
  };
}

/**
 * A stored row as a `coral.colony.v1` push row (protobufjs object, camelCase
 * field names): `HttpMetricRow`, `GrpcMetricRow`, `SqlMetricRow` or
 * `SpanRow`, every column carried.
 */
export function toPushRow<K extends RecordKind>(
  kind: K,
  row: StoredRows[K],
): Record<string, unknown> {
  if (kind === "spans") {
    const s = row as StoredSpanRow;
    return {
      seqId: s.seqId,
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: s.parentSpanId,
      serviceName: s.serviceName,
      name: s.name,
      kind: s.kind,
      startTimeUs: s.startTimeUs,
      durationUs: s.durationUs,
      statusCode: s.statusCode,
      statusMessage: s.statusMessage,
      attributesJson: s.attributesJson,
      resourceAttributesJson: s.resourceAttributesJson,
      processPid: s.processPid,
      source: s.source,
    };
  }
  const m = row as StoredMetricRow;
  const window: Record<string, unknown> = {
    seqId: m.seqId,
    timestampMs: Math.round(m.timestampMs),
    windowStartMs: Math.round(m.windowStartMs),
    serviceName: m.serviceName,
    side: m.side,
    latencyBucketsMs: m.boundsMs,
    latencyCounts: m.counts,
    count: m.count,
    sumMs: m.sumMs,
    attributesJson: m.attributesJson,
    source: m.source,
  };
  if (m.minMs !== null) window.minMs = m.minMs;
  if (m.maxMs !== null) window.maxMs = m.maxMs;
  switch (kind) {
    case "http": {
      const h = row as StoredHttpRow;
      return {
        window,
        method: h.method,
        route: h.route,
        statusCode: h.statusCode,
      };
    }
    case "grpc": {
      const g = row as StoredGrpcRow;
      return { window, method: g.method, statusCode: g.statusCode };
    }
    default: {
      const q = row as StoredSqlRow;
      return {
        window,
        dbSystem: q.dbSystem,
        operation: q.operation,
        table: q.table,
        errorType: q.errorType,
      };
    }
  }
}

/** gRPC statuses the agent stores that have no uint32 code of their own. */
const GRPC_SPECIAL: Record<number, { code: number; label: string }> = {
  [-1]: { code: 2, label: "no_status" },
  [-2]: { code: 0, label: "undecoded" },
};

/**
 * A stored row as Coral's pull message (protobufjs object, camelCase):
 * `EbpfHttpMetric`, `EbpfGrpcMetric`, `EbpfSqlMetric` or `EbpfTraceSpan`.
 * See the module notes for what goes into `attributes`.
 */
export function toCoralMessage<K extends RecordKind>(
  kind: K,
  row: StoredRows[K],
): Record<string, unknown> {
  if (kind === "spans") {
    const s = row as StoredSpanRow;
    const attributes = stringAttributes(s.attributesJson);
    attributes["coral.start_time_us"] = String(s.startTimeUs);
    if (s.statusMessage !== "") {
      attributes["otel.status_description"] = s.statusMessage;
    }
    return {
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: s.parentSpanId,
      serviceName: s.serviceName,
      spanName: s.name,
      spanKind: s.kind,
      startTime: Math.floor(s.startTimeUs / 1000),
      durationUs: s.durationUs,
      statusCode: Math.max(0, s.statusCode),
      attributes,
      seqId: s.seqId,
      processPid: Math.max(0, s.processPid),
    };
  }
  const m = row as StoredMetricRow;
  const attributes = stringAttributes(m.attributesJson);
  attributes["span.kind"] = m.side;
  const common = {
    timestamp: Math.round(m.timestampMs),
    serviceName: m.serviceName,
    latencyBuckets: m.boundsMs,
    latencyCounts: m.counts,
    attributes,
    seqId: m.seqId,
  };
  switch (kind) {
    case "http": {
      const h = row as StoredHttpRow;
      return {
        ...common,
        httpMethod: h.method,
        httpRoute: h.route,
        httpStatusCode: Math.max(0, h.statusCode),
        requestCount: m.count,
      };
    }
    case "grpc": {
      const g = row as StoredGrpcRow;
      const special = GRPC_SPECIAL[g.statusCode];
      if (special !== undefined) {
        attributes["coral.grpc.status"] = special.label;
      }
      return {
        ...common,
        grpcMethod: g.method,
        grpcStatusCode: special?.code ?? Math.max(0, g.statusCode),
        requestCount: m.count,
      };
    }
    default: {
      const q = row as StoredSqlRow;
      attributes["db.system.name"] = q.dbSystem;
      if (q.errorType !== "") attributes["error.type"] = q.errorType;
      return {
        ...common,
        sqlOperation: q.operation,
        tableName: q.table,
        queryCount: m.count,
      };
    }
  }
}

/** A JSON attributes object with every value as text. */
function stringAttributes(json: string): Record<string, string> {
  const out: Record<string, string> = {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return out;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return out;
  }
  for (const [key, value] of Object.entries(parsed)) {
    out[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}
