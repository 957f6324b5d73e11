/**
 * The database layout: four data tables named after Coral's RFD 032, one
 * `agent_meta` table, and views that show histograms one row per bucket.
 *
 * Metric tables hold one row per record (series × window). `timestamp` is
 * the window end, `window_start` its start, both UTC `TIMESTAMP`s.
 * `latency_buckets_ms` are the finite upper bounds in milliseconds;
 * `latency_counts` has one entry more, the last being the +Inf bucket.
 * `request_count` is the histogram's count (the sum of `latency_counts`);
 * the SQL table keeps the same name for it (the Coral RPC calls it
 * `query_count`), so every metric table answers the same queries.
 * `latency_min_ms`/`latency_max_ms` are NULL when the sender did not say.
 * `attributes` is JSON text that keeps value types (a number stays one).
 *
 * `seq_id` grows per table and is never reused while `session_id` stays:
 * the store continues from the highest value ever committed, which
 * retention records in `agent_meta` (`seq_high.<table>`) before it deletes.
 *
 * Time filters rely on DuckDB's zone maps (min/max per row group, kept
 * automatically): rows arrive roughly in time order, so a time range skips
 * whole row groups. ART indexes help only point lookups and cost insert
 * time, so none is created. Spans are made unique on (trace_id, span_id)
 * by the writer (see `store.ts`), not by a PRIMARY KEY, which measured 4×
 * slower to insert and 4× larger on disk.
 *
 * @module
 */
import type { DuckDBConnection } from "@duckdb/node-api";

/** Bumped when the layout changes; stored in `agent_meta.schema_version`. */
export const SCHEMA_VERSION = 1;

export const METRIC_TABLES = [
  "beyla_http_metrics",
  "beyla_grpc_metrics",
  "beyla_sql_metrics",
] as const;
export type MetricTable = typeof METRIC_TABLES[number];

export const DATA_TABLES = [...METRIC_TABLES, "beyla_traces"] as const;
export type DataTable = typeof DATA_TABLES[number];

/** The column that retention and time filters use, per table. */
export const TIME_COLUMN: Record<DataTable, string> = {
  beyla_http_metrics: "timestamp",
  beyla_grpc_metrics: "timestamp",
  beyla_sql_metrics: "timestamp",
  beyla_traces: "start_time",
};

const METRIC_HEAD = `
  seq_id UBIGINT NOT NULL,
  timestamp TIMESTAMP NOT NULL,
  window_start TIMESTAMP NOT NULL,
  agent_id VARCHAR NOT NULL,
  service_name VARCHAR NOT NULL,
  span_kind VARCHAR NOT NULL,`;

const METRIC_TAIL = `
  latency_buckets_ms DOUBLE[] NOT NULL,
  latency_counts UBIGINT[] NOT NULL,
  request_count UBIGINT NOT NULL,
  latency_sum_ms DOUBLE NOT NULL,
  latency_min_ms DOUBLE,
  latency_max_ms DOUBLE,
  attributes JSON NOT NULL,
  source VARCHAR NOT NULL`;

/** Protocol key columns per metric table, in table order. */
export const METRIC_KEYS: Record<MetricTable, readonly string[]> = {
  beyla_http_metrics: ["http_method", "http_route", "http_status_code"],
  beyla_grpc_metrics: ["grpc_method", "grpc_status_code"],
  beyla_sql_metrics: ["db_system", "sql_operation", "table_name", "error_type"],
};

const TABLE_DDL: Record<DataTable, string> = {
  beyla_http_metrics:
    `CREATE TABLE IF NOT EXISTS beyla_http_metrics (${METRIC_HEAD}
  http_method VARCHAR NOT NULL,
  http_route VARCHAR NOT NULL,
  http_status_code INTEGER NOT NULL,${METRIC_TAIL})`,
  beyla_grpc_metrics:
    `CREATE TABLE IF NOT EXISTS beyla_grpc_metrics (${METRIC_HEAD}
  grpc_method VARCHAR NOT NULL,
  grpc_status_code INTEGER NOT NULL,${METRIC_TAIL})`,
  beyla_sql_metrics:
    `CREATE TABLE IF NOT EXISTS beyla_sql_metrics (${METRIC_HEAD}
  db_system VARCHAR NOT NULL,
  sql_operation VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  error_type VARCHAR NOT NULL,${METRIC_TAIL})`,
  beyla_traces: `CREATE TABLE IF NOT EXISTS beyla_traces (
  seq_id UBIGINT NOT NULL,
  trace_id VARCHAR NOT NULL,
  span_id VARCHAR NOT NULL,
  parent_span_id VARCHAR NOT NULL,
  agent_id VARCHAR NOT NULL,
  service_name VARCHAR NOT NULL,
  span_name VARCHAR NOT NULL,
  span_kind VARCHAR NOT NULL,
  start_time TIMESTAMP NOT NULL,
  duration_us BIGINT NOT NULL,
  status_code INTEGER NOT NULL,
  status_message VARCHAR NOT NULL,
  attributes JSON NOT NULL,
  resource_attributes JSON NOT NULL,
  process_pid INTEGER NOT NULL,
  source VARCHAR NOT NULL)`,
};

/** `<table>_buckets`: one row per (record, bucket), +Inf as 'inf'::DOUBLE. */
function bucketView(table: MetricTable): string {
  const keys = METRIC_KEYS[table].join(", ");
  return `CREATE OR REPLACE VIEW ${table}_buckets AS
SELECT seq_id, timestamp, window_start, agent_id, service_name, span_kind, ${keys},
  unnest(list_append(latency_buckets_ms, 'inf'::DOUBLE)) AS latency_bucket_ms,
  unnest(latency_counts) AS count,
  attributes, source
FROM ${table}`;
}

/**
 * Creates whatever is missing (tables, views, `agent_meta` with
 * `schema_version` and a new `session_id`) in one transaction. Idempotent.
 * Refuses a database written by a newer schema.
 */
export async function ensureSchema(conn: DuckDBConnection): Promise<void> {
  await conn.run("BEGIN TRANSACTION");
  try {
    await conn.run(
      `CREATE TABLE IF NOT EXISTS agent_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)`,
    );
    const found = await readMeta(conn, "schema_version");
    if (found !== undefined && Number(found) > SCHEMA_VERSION) {
      throw new Error(
        `Cannot use the database: it has schema version ${found}, this agent knows up to ${SCHEMA_VERSION}`,
      );
    }
    for (const table of DATA_TABLES) await conn.run(TABLE_DDL[table]);
    for (const table of METRIC_TABLES) await conn.run(bucketView(table));
    await conn.run(
      `INSERT INTO agent_meta VALUES ('session_id', uuid()::VARCHAR) ON CONFLICT DO NOTHING`,
    );
    await conn.run(
      `INSERT INTO agent_meta VALUES ('schema_version', $1)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      [String(SCHEMA_VERSION)],
    );
    await conn.run("COMMIT");
  } catch (error) {
    await conn.run("ROLLBACK").catch(() => {});
    throw error;
  }
}

/** One `agent_meta` value, or undefined when absent. */
export async function readMeta(
  conn: DuckDBConnection,
  key: string,
): Promise<string | undefined> {
  const reader = await conn.runAndReadAll(
    "SELECT value FROM agent_meta WHERE key = $1",
    [key],
  );
  const value = reader.getRows()[0]?.[0];
  return value === undefined || value === null ? undefined : String(value);
}

/** Key in `agent_meta` holding the highest seq_id ever committed to `table`. */
export function seqHighKey(table: DataTable): string {
  return `seq_high.${table}`;
}
