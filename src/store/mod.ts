/**
 * DuckDB storage: schema, the batched writer, retention and queries.
 *
 * @module
 */
export { DuckDbStore, KIND_TABLE } from "./store.ts";
export type { RecordKind, StoreOptions, StoreStats } from "./store.ts";
export {
  StoreClosedError,
  StoreError,
  StoreFullError,
  StoreLockedError,
  StoreWriteError,
} from "./errors.ts";
export {
  queryGrpc,
  queryHttp,
  queryMeta,
  querySql,
  queryStatusRows,
  queryTraces,
} from "./queries.ts";
export type {
  GrpcRedRow,
  HttpRedRow,
  RedFilter,
  RedResult,
  RedStats,
  Side,
  SqlRedRow,
  TableStatus,
  TraceFilter,
  TraceRow,
  TraceSpanRow,
} from "./queries.ts";
export {
  DATA_TABLES,
  METRIC_TABLES,
  SCHEMA_VERSION,
  TIME_COLUMN,
} from "./schema.ts";
export type { DataTable, MetricTable } from "./schema.ts";
