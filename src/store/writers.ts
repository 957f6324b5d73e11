/**
 * Record → row conversion for each table, on top of the column builders in
 * `chunk.ts`. Each writer owns its appenders and reusable chunks; it runs
 * inside the transaction the store has opened on the same connection.
 *
 * @module
 */
import type { DuckDBAppender, DuckDBConnection } from "@duckdb/node-api";
import type {
  Attributes,
  GrpcMetricRecord,
  HttpMetricRecord,
  MetricWindow,
  SpanRecord,
  SqlMetricRecord,
} from "../model/records.ts";
import {
  CHUNK_ROWS,
  ChunkWriter,
  Float64Column,
  Int32Column,
  Int64Column,
  NumberListColumn,
  StringColumn,
} from "./chunk.ts";
import type { MetricTable } from "./schema.ts";

/**
 * Turns attribute objects into JSON text, once per object: use one cache per
 * commit (records are not changed once handed to the store).
 */
export class JsonCache {
  #texts = new Map<Attributes, string>();

  text(attributes: Attributes): string {
    let text = this.#texts.get(attributes);
    if (text === undefined) {
      text = isEmpty(attributes) ? "{}" : JSON.stringify(attributes);
      this.#texts.set(attributes, text);
    }
    return text;
  }

  /** JSON text without caching, for objects seen once (span attributes). */
  once(attributes: Attributes): string {
    return isEmpty(attributes) ? "{}" : JSON.stringify(attributes);
  }
}

function isEmpty(attributes: Attributes): boolean {
  for (const _ in attributes) return false;
  return true;
}

/** Yields to the event loop every this many chunks of a long append. */
const CHUNKS_PER_YIELD = 8;

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether a metric record can be stored as it is. */
export function validMetric(record: MetricWindow): boolean {
  const h = record.histogram;
  return Number.isFinite(record.timestampMs) &&
    Number.isFinite(record.windowStartMs) &&
    Array.isArray(h?.boundsMs) && Array.isArray(h.counts) &&
    h.counts.length === h.boundsMs.length + 1 &&
    Number.isFinite(h.count) && h.count >= 0 && Number.isFinite(h.sumMs);
}

/** Whether a span can be stored as it is. */
export function validSpan(span: SpanRecord): boolean {
  return typeof span.traceId === "string" && span.traceId.length === 32 &&
    typeof span.spanId === "string" && span.spanId.length === 16 &&
    Number.isFinite(span.startTimeUs) && Number.isFinite(span.durationUs);
}

/** Protocol key columns of one metric table, filled from one record. */
interface MetricKeys<R> {
  columns: (StringColumn | Int32Column)[];
  set(i: number, record: R): void;
}

/** Appends metric records of one table (see `schema.ts` for the columns). */
export class MetricWriter<R extends MetricWindow> {
  readonly #chunks: ChunkWriter;
  readonly #keys: MetricKeys<R>;
  readonly #seq = new Int64Column(CHUNK_ROWS);
  readonly #timestamp = new Int64Column(CHUNK_ROWS);
  readonly #windowStart = new Int64Column(CHUNK_ROWS);
  readonly #agent = new StringColumn(CHUNK_ROWS);
  readonly #service = new StringColumn(CHUNK_ROWS);
  readonly #side = new StringColumn(CHUNK_ROWS);
  readonly #bounds = new NumberListColumn(CHUNK_ROWS, { unsigned: false });
  readonly #counts = new NumberListColumn(CHUNK_ROWS, { unsigned: true });
  readonly #count = new Int64Column(CHUNK_ROWS);
  readonly #sum = new Float64Column(CHUNK_ROWS);
  readonly #min = new Float64Column(CHUNK_ROWS);
  readonly #max = new Float64Column(CHUNK_ROWS);
  readonly #attributes = new StringColumn(CHUNK_ROWS);
  readonly #source = new StringColumn(CHUNK_ROWS);

  constructor(readonly appender: DuckDBAppender, keys: MetricKeys<R>) {
    this.#keys = keys;
    this.#chunks = new ChunkWriter(appender, [
      this.#seq,
      this.#timestamp,
      this.#windowStart,
      this.#agent,
      this.#service,
      this.#side,
      ...keys.columns,
      this.#bounds,
      this.#counts,
      this.#count,
      this.#sum,
      this.#min,
      this.#max,
      this.#attributes,
      this.#source,
    ]);
  }

  /**
   * Appends `records` with seq_ids firstSeq, firstSeq+1, … Rows reach the
   * table with the appender's flush, inside the caller's transaction.
   */
  async append(
    records: readonly R[],
    options: { firstSeq: number; agentId: string; json: JsonCache },
  ): Promise<void> {
    const { agentId, json } = options;
    let seq = options.firstSeq;
    let chunks = 0;
    for (let offset = 0; offset < records.length; offset += CHUNK_ROWS) {
      const rows = Math.min(CHUNK_ROWS, records.length - offset);
      for (let i = 0; i < rows; i++) {
        const r = records[offset + i]!;
        const h = r.histogram;
        this.#seq.set(i, seq++);
        this.#timestamp.set(i, Math.round(r.timestampMs * 1000));
        this.#windowStart.set(i, Math.round(r.windowStartMs * 1000));
        this.#agent.set(i, agentId);
        this.#service.set(i, r.serviceName);
        this.#side.set(i, r.side);
        this.#keys.set(i, r);
        this.#bounds.set(i, h.boundsMs);
        this.#counts.set(i, h.counts);
        this.#count.set(i, h.count);
        this.#sum.set(i, h.sumMs);
        this.#min.set(i, h.minMs ?? null);
        this.#max.set(i, h.maxMs ?? null);
        this.#attributes.set(i, json.text(r.attributes));
        this.#source.set(i, r.source);
      }
      this.#chunks.append(rows);
      if (++chunks % CHUNKS_PER_YIELD === 0) await yieldToEventLoop();
    }
    this.appender.flushSync();
  }
}

/** Creates the writer for each metric table on `conn`. */
export async function createMetricWriters(conn: DuckDBConnection): Promise<{
  http: MetricWriter<HttpMetricRecord>;
  grpc: MetricWriter<GrpcMetricRecord>;
  sql: MetricWriter<SqlMetricRecord>;
}> {
  const httpMethod = new StringColumn(CHUNK_ROWS);
  const httpRoute = new StringColumn(CHUNK_ROWS);
  const httpStatus = new Int32Column(CHUNK_ROWS);
  const grpcMethod = new StringColumn(CHUNK_ROWS);
  const grpcStatus = new Int32Column(CHUNK_ROWS);
  const dbSystem = new StringColumn(CHUNK_ROWS);
  const operation = new StringColumn(CHUNK_ROWS);
  const tableName = new StringColumn(CHUNK_ROWS);
  const errorType = new StringColumn(CHUNK_ROWS);
  const appender = (table: MetricTable) => conn.createAppender(table);
  return {
    http: new MetricWriter<HttpMetricRecord>(
      await appender("beyla_http_metrics"),
      {
        columns: [httpMethod, httpRoute, httpStatus],
        set(i, r) {
          httpMethod.set(i, r.method);
          httpRoute.set(i, r.route);
          httpStatus.set(i, r.statusCode);
        },
      },
    ),
    grpc: new MetricWriter<GrpcMetricRecord>(
      await appender("beyla_grpc_metrics"),
      {
        columns: [grpcMethod, grpcStatus],
        set(i, r) {
          grpcMethod.set(i, r.method);
          grpcStatus.set(i, r.statusCode);
        },
      },
    ),
    sql: new MetricWriter<SqlMetricRecord>(
      await appender("beyla_sql_metrics"),
      {
        columns: [dbSystem, operation, tableName, errorType],
        set(i, r) {
          dbSystem.set(i, r.dbSystem);
          operation.set(i, r.operation);
          tableName.set(i, r.table);
          errorType.set(i, r.errorType);
        },
      },
    ),
  };
}

const KEYS = "beyla_traces_incoming_keys";
const KEYS_REF = `temp.main.${KEYS}`;

/** What one span append did. */
export interface SpanAppendResult {
  inserted: number;
  /** Spans dropped because an equal (trace_id, span_id) was already stored or earlier in `spans`. */
  duplicates: number;
}

/**
 * Appends spans, storing each (trace_id, span_id) once.
 *
 * Duplicates inside the batch are dropped here. The keys of the rest
 * (position, start time, ids) go to a small temporary table, and one
 * semi-join finds those already stored, reading only stored spans whose
 * start time lies in the batch's range (a re-sent span carries the same
 * start time), so zone maps limit it to a few row groups instead of the
 * whole table. The others are appended to `beyla_traces` directly, with
 * dense seq_ids. This costs two short string columns more than appending
 * blindly, and is ≈2 µs a row cheaper than staging whole rows and moving
 * them with INSERT … SELECT.
 */
export class SpanWriter {
  readonly #conn: DuckDBConnection;
  readonly #keyChunks: ChunkWriter;
  readonly #keyOrder = new Int32Column(CHUNK_ROWS);
  readonly #keyStart = new Int64Column(CHUNK_ROWS);
  readonly #keyTrace = new StringColumn(CHUNK_ROWS);
  readonly #keySpan = new StringColumn(CHUNK_ROWS);
  readonly #chunks: ChunkWriter;
  readonly #seq = new Int64Column(CHUNK_ROWS);
  readonly #traceId = new StringColumn(CHUNK_ROWS);
  readonly #spanId = new StringColumn(CHUNK_ROWS);
  readonly #parent = new StringColumn(CHUNK_ROWS);
  readonly #agent = new StringColumn(CHUNK_ROWS);
  readonly #service = new StringColumn(CHUNK_ROWS);
  readonly #name = new StringColumn(CHUNK_ROWS);
  readonly #kind = new StringColumn(CHUNK_ROWS);
  readonly #start = new Int64Column(CHUNK_ROWS);
  readonly #duration = new Int64Column(CHUNK_ROWS);
  readonly #status = new Int32Column(CHUNK_ROWS);
  readonly #message = new StringColumn(CHUNK_ROWS);
  readonly #attributes = new StringColumn(CHUNK_ROWS);
  readonly #resource = new StringColumn(CHUNK_ROWS);
  readonly #pid = new Int32Column(CHUNK_ROWS);
  readonly #source = new StringColumn(CHUNK_ROWS);

  private constructor(
    conn: DuckDBConnection,
    readonly appender: DuckDBAppender,
    readonly keyAppender: DuckDBAppender,
  ) {
    this.#conn = conn;
    this.#keyChunks = new ChunkWriter(keyAppender, [
      this.#keyOrder,
      this.#keyStart,
      this.#keyTrace,
      this.#keySpan,
    ]);
    this.#chunks = new ChunkWriter(appender, [
      this.#seq,
      this.#traceId,
      this.#spanId,
      this.#parent,
      this.#agent,
      this.#service,
      this.#name,
      this.#kind,
      this.#start,
      this.#duration,
      this.#status,
      this.#message,
      this.#attributes,
      this.#resource,
      this.#pid,
      this.#source,
    ]);
  }

  static async create(conn: DuckDBConnection): Promise<SpanWriter> {
    await conn.run(`CREATE TEMP TABLE IF NOT EXISTS ${KEYS} (
      ord INTEGER NOT NULL,
      start_time TIMESTAMP NOT NULL,
      trace_id VARCHAR NOT NULL,
      span_id VARCHAR NOT NULL)`);
    const appender = await conn.createAppender("beyla_traces");
    const keyAppender = await conn.createAppender(KEYS, "main", "temp");
    return new SpanWriter(conn, appender, keyAppender);
  }

  /** Both appenders, for closing. */
  get appenders(): DuckDBAppender[] {
    return [this.appender, this.keyAppender];
  }

  async append(
    spans: readonly SpanRecord[],
    options: { firstSeq: number; agentId: string; json: JsonCache },
  ): Promise<SpanAppendResult> {
    // Unique within the batch; keys to the temporary table.
    const seen = new Set<string>();
    const unique: SpanRecord[] = [];
    let minStart = Infinity;
    let maxStart = -Infinity;
    let rows = 0;
    let chunks = 0;
    for (const s of spans) {
      const key = s.traceId + s.spanId;
      if (seen.has(key)) continue;
      seen.add(key);
      const start = Math.round(s.startTimeUs);
      if (start < minStart) minStart = start;
      if (start > maxStart) maxStart = start;
      this.#keyOrder.set(rows, unique.length);
      this.#keyStart.set(rows, start);
      this.#keyTrace.set(rows, s.traceId);
      this.#keySpan.set(rows, s.spanId);
      unique.push(s);
      if (++rows === CHUNK_ROWS) {
        this.#keyChunks.append(rows);
        rows = 0;
        if (++chunks % CHUNKS_PER_YIELD === 0) await yieldToEventLoop();
      }
    }
    if (unique.length === 0) return { inserted: 0, duplicates: spans.length };
    this.#keyChunks.append(rows);
    this.keyAppender.flushSync();

    // Which of them are stored already (usually none).
    const conn = this.#conn;
    const found = await conn.runAndReadAll(
      `SELECT k.ord FROM ${KEYS_REF} k SEMI JOIN (
         SELECT start_time, trace_id, span_id FROM beyla_traces
         WHERE start_time BETWEEN make_timestamp(${minStart}::BIGINT)
           AND make_timestamp(${maxStart}::BIGINT)
       ) o ON o.start_time = k.start_time AND o.trace_id = k.trace_id
         AND o.span_id = k.span_id`,
    );
    await conn.run(`DELETE FROM ${KEYS_REF}`);
    const stored = new Set<number>();
    for (const [ord] of found.getRows()) stored.add(Number(ord));

    // The rest, in order, with dense seq_ids.
    const { agentId, json } = options;
    let seq = options.firstSeq;
    rows = 0;
    for (let ord = 0; ord < unique.length; ord++) {
      if (stored.size > 0 && stored.has(ord)) continue;
      const s = unique[ord]!;
      this.#seq.set(rows, seq++);
      this.#traceId.set(rows, s.traceId);
      this.#spanId.set(rows, s.spanId);
      this.#parent.set(rows, s.parentSpanId);
      this.#agent.set(rows, agentId);
      this.#service.set(rows, s.serviceName);
      this.#name.set(rows, s.name);
      this.#kind.set(rows, s.kind);
      this.#start.set(rows, Math.round(s.startTimeUs));
      this.#duration.set(rows, Math.round(s.durationUs));
      this.#status.set(rows, s.statusCode);
      this.#message.set(rows, s.statusMessage);
      this.#attributes.set(rows, json.once(s.attributes));
      this.#resource.set(rows, json.text(s.resourceAttributes));
      this.#pid.set(rows, s.processPid);
      this.#source.set(rows, s.source);
      if (++rows === CHUNK_ROWS) {
        this.#chunks.append(rows);
        rows = 0;
        if (++chunks % CHUNKS_PER_YIELD === 0) await yieldToEventLoop();
      }
    }
    this.#chunks.append(rows);
    this.appender.flushSync();
    const inserted = seq - options.firstSeq;
    return { inserted, duplicates: spans.length - inserted };
  }
}
