/**
 * The DuckDB store: a group-committing writer for record batches, seq_id
 * and session bookkeeping, retention, and read access for queries.
 *
 *     const store = await DuckDbStore.open("data/coral.duckdb", {
 *       agentId: "agent-1",
 *       counters,
 *     });
 *     await store.write(batch); // resolves once the batch is committed
 *     const rows = await queryHttp(store.connection, { sinceMs, nowMs });
 *     await store.close();
 *
 * Writes: `write` queues the batch and resolves after the transaction that
 * holds it has committed (DuckDB syncs its WAL on commit, so a crash right
 * after loses nothing). One transaction runs at a time; batches that arrive
 * meanwhile are merged into the next one (group commit). The queue is
 * bounded by rows; when full, `write` rejects with `StoreFullError` and
 * counts `store.<kind>.dropped.queue_full`.
 *
 * Counters (kind = http | grpc | sql | spans):
 * `store.<kind>.written`, `store.<kind>.dropped.queue_full`,
 * `store.<kind>.dropped.write_error`, `store.<kind>.rejected.invalid`,
 * `store.spans.duplicate`, `store.<table>.expired`, `store.commits`,
 * `store.retention.failed`.
 *
 * @module
 */
import { dirname } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { Counters } from "../model/counters.ts";
import {
  batchSize,
  type GrpcMetricRecord,
  type HttpMetricRecord,
  type MetricWindow,
  type RecordBatch,
  type RecordSink,
  type SpanRecord,
  type SqlMetricRecord,
} from "../model/records.ts";
import {
  StoreClosedError,
  StoreFullError,
  StoreLockedError,
  StoreWriteError,
} from "./errors.ts";
import {
  DATA_TABLES,
  type DataTable,
  ensureSchema,
  readMeta,
  seqHighKey,
  TIME_COLUMN,
} from "./schema.ts";
import {
  createMetricWriters,
  JsonCache,
  type MetricWriter,
  SpanWriter,
  validMetric,
  validSpan,
} from "./writers.ts";

/** The record kinds of a batch, as counters name them. */
export type RecordKind = keyof RecordBatch;

const KINDS: readonly RecordKind[] = ["http", "grpc", "sql", "spans"];

/** The table each kind is stored in. */
export const KIND_TABLE: Record<RecordKind, DataTable> = {
  http: "beyla_http_metrics",
  grpc: "beyla_grpc_metrics",
  sql: "beyla_sql_metrics",
  spans: "beyla_traces",
};

export interface StoreOptions {
  /** Written into every row's `agent_id`. */
  agentId: string;
  counters: Counters;
  /** Rows accepted but not yet committed, at most. Default 500 000. */
  maxPendingRows?: number;
  /**
   * Rows one transaction takes from the queue, at most (a single larger
   * batch is still taken whole). Default 100 000.
   */
  maxRowsPerCommit?: number;
  /**
   * DuckDB's `memory_limit` (buffer pool: caches, query working memory).
   * Default "128MB": a cap, not a reservation (RSS grows only when a query
   * or a write needs it: 256MB measured +100 MiB peak RSS under span load);
   * at 64MB, `query sql` over a busy hour ran out of memory.
   */
  memoryLimit?: string;
  /** DuckDB's `checkpoint_threshold` (WAL size). Default "256MB". */
  checkpointThreshold?: string;
}

export interface StoreStats {
  path: string;
  fileBytes: number;
  walBytes: number;
  rows: Record<DataTable, number>;
  sessionId: string;
  /**
   * Highest seq_id committed per table (0 when none): rows up to it are
   * visible to queries.
   */
  maxSeqIds: Record<DataTable, number>;
}

interface Pending {
  batch: RecordBatch;
  rows: number;
  resolve(): void;
  reject(error: Error): void;
}

interface Writers {
  http: MetricWriter<HttpMetricRecord>;
  grpc: MetricWriter<GrpcMetricRecord>;
  sql: MetricWriter<SqlMetricRecord>;
  spans: SpanWriter;
}

const DEFAULT_MAX_PENDING_ROWS = 500_000;
const DEFAULT_MAX_ROWS_PER_COMMIT = 100_000;

/** DuckDB-backed `RecordSink`. See the module notes. */
export class DuckDbStore implements RecordSink {
  readonly path: string;
  /** UUID created with the database; changes only if it is recreated. */
  readonly sessionId: string;
  readonly readOnly: boolean;

  readonly #instance: DuckDBInstance;
  readonly #writer: DuckDBConnection;
  readonly #reader: DuckDBConnection;
  readonly #agentId: string;
  readonly #counters: Counters | undefined;
  readonly #maxPendingRows: number;
  readonly #maxRowsPerCommit: number;
  /** Next seq_id per table, including the running transaction's rows. */
  readonly #nextSeq: Record<DataTable, number>;
  /** Highest committed seq_id per table. */
  readonly #committedSeq: Record<DataTable, number>;
  #writers: Writers | undefined;
  #writersBroken = false;

  #queue: Pending[] = [];
  #pendingRows = 0;
  #commitScheduled = false;
  #lane: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  #retentionMs: number | undefined;
  #retentionHold: RetentionHold | undefined;
  #retentionTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(init: {
    path: string;
    sessionId: string;
    readOnly: boolean;
    instance: DuckDBInstance;
    writer: DuckDBConnection;
    reader: DuckDBConnection;
    nextSeq: Record<DataTable, number>;
    writers?: Writers;
    options?: StoreOptions;
  }) {
    this.path = init.path;
    this.sessionId = init.sessionId;
    this.readOnly = init.readOnly;
    this.#instance = init.instance;
    this.#writer = init.writer;
    this.#reader = init.reader;
    this.#nextSeq = init.nextSeq;
    this.#committedSeq = {} as Record<DataTable, number>;
    for (const table of DATA_TABLES) {
      this.#committedSeq[table] = init.nextSeq[table] - 1;
    }
    this.#writers = init.writers;
    this.#agentId = init.options?.agentId ?? "";
    this.#counters = init.options?.counters;
    this.#maxPendingRows = init.options?.maxPendingRows ??
      DEFAULT_MAX_PENDING_ROWS;
    this.#maxRowsPerCommit = init.options?.maxRowsPerCommit ??
      DEFAULT_MAX_ROWS_PER_COMMIT;
  }

  /**
   * Opens (or creates, with its parent directory) the database for writing.
   * Throws `StoreLockedError` when another process has it open.
   */
  static async open(path: string, options: StoreOptions): Promise<DuckDbStore> {
    if (path !== ":memory:") {
      await Deno.mkdir(dirname(path), { recursive: true });
    }
    const instance = await createInstance(path, {
      memory_limit: options.memoryLimit ?? "128MB",
      // DuckDB checkpoints inside the commit that crosses this WAL size;
      // at the default 16MB that stalled ingest every few commits (metric
      // commits took 2.5x longer). Retention checkpoints on its timer.
      checkpoint_threshold: options.checkpointThreshold ?? "256MB",
    });
    try {
      const writer = await instance.connect();
      await ensureSchema(writer);
      const reader = await instance.connect();
      const sessionId = (await readMeta(writer, "session_id"))!;
      const nextSeq = await loadNextSeqs(writer);
      const writers = await createWriters(writer);
      return new DuckDbStore({
        path,
        sessionId,
        readOnly: false,
        instance,
        writer,
        reader,
        nextSeq,
        writers,
        options,
      });
    } catch (error) {
      instance.closeSync();
      throw error;
    }
  }

  /**
   * Opens an existing database read-only, e.g. a stopped agent's file for
   * `--db`. Throws `StoreLockedError` while an agent has it open.
   */
  static async openReadOnly(path: string): Promise<DuckDbStore> {
    try {
      await Deno.stat(path);
    } catch (error) {
      throw new Error(`Cannot open database ${path}: no such file`, {
        cause: error,
      });
    }
    const instance = await createInstance(path, { access_mode: "READ_ONLY" });
    try {
      const conn = await instance.connect();
      let sessionId: string | undefined;
      try {
        sessionId = await readMeta(conn, "session_id");
      } catch (error) {
        throw new Error(
          `Cannot open database ${path}: not a coral-agent database (no agent_meta table)`,
          { cause: error },
        );
      }
      if (sessionId === undefined) {
        throw new Error(
          `Cannot open database ${path}: not a coral-agent database (no session_id)`,
        );
      }
      return new DuckDbStore({
        path,
        sessionId,
        readOnly: true,
        instance,
        writer: conn,
        reader: conn,
        nextSeq: await loadNextSeqs(conn),
      });
    } catch (error) {
      instance.closeSync();
      throw error;
    }
  }

  /**
   * The connection queries run on (`queries.ts`). It sees committed data
   * only and never waits for a write.
   */
  get connection(): DuckDBConnection {
    return this.#reader;
  }

  /**
   * Queues `batch`; resolves once it is committed. Rejects with
   * `StoreFullError` when the queue is full, `StoreClosedError` after
   * `close`, `StoreWriteError` when its transaction failed. Records that
   * cannot be stored (histogram counts not matching the bounds, bad ids)
   * are skipped and counted `store.<kind>.rejected.invalid`.
   */
  write(batch: RecordBatch): Promise<void> {
    if (this.readOnly) {
      return Promise.reject(
        new Error(`Cannot write to ${this.path}: opened read-only`),
      );
    }
    if (this.#closed) return Promise.reject(new StoreClosedError(this.path));
    const rows = batchSize(batch);
    if (rows === 0) return Promise.resolve();
    if (this.#pendingRows + rows > this.#maxPendingRows) {
      for (const kind of KINDS) {
        this.#count(`store.${kind}.dropped.queue_full`, batch[kind].length);
      }
      const tooLarge = rows > this.#maxPendingRows;
      return Promise.reject(
        new StoreFullError(
          tooLarge
            ? `Cannot store a batch of ${rows} rows: larger than the write queue (${this.#maxPendingRows} rows)`
            : `Cannot store a batch of ${rows} rows: write queue full (${this.#pendingRows} of ${this.#maxPendingRows} rows pending)`,
          !tooLarge,
        ),
      );
    }
    this.#pendingRows += rows;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ batch, rows, resolve, reject });
      this.#scheduleCommit();
    });
  }

  /** Rows accepted by `write` and not yet committed. */
  get pendingRows(): number {
    return this.#pendingRows;
  }

  /** Resolves once everything queued so far has been committed (or failed). */
  flush(): Promise<void> {
    return this.#exclusive(async () => {
      while (this.#queue.length > 0) await this.#commitNext();
    });
  }

  /**
   * Deletes rows older than `retentionMs` every `intervalMs` (and once
   * now). Replaces a previous schedule.
   */
  startRetention(retentionMs: number, intervalMs = 60_000): void {
    if (this.readOnly) {
      throw new Error(`Cannot run retention on ${this.path}: opened read-only`);
    }
    this.#retentionMs = retentionMs;
    if (this.#retentionTimer !== undefined) {
      clearInterval(this.#retentionTimer);
    }
    const run = () => {
      this.runRetention().catch(() => this.#count("store.retention.failed"));
    };
    const timer = setInterval(run, intervalMs);
    Deno.unrefTimer(timer as unknown as number);
    this.#retentionTimer = timer;
    run();
  }

  /**
   * Deletes rows whose time (window end; span start) is older than
   * `nowMs - retentionMs`, in one transaction, counting
   * `store.<table>.expired`. `retentionMs` defaults to the one given to
   * `startRetention`. Returns the rows deleted per table.
   */
  runRetention(
    nowMs: number = Date.now(),
    retentionMs: number | undefined = this.#retentionMs,
  ): Promise<Record<DataTable, number>> {
    if (retentionMs === undefined) {
      return Promise.reject(
        new Error("Cannot run retention: no retention period given"),
      );
    }
    if (this.readOnly) {
      return Promise.reject(
        new Error(`Cannot run retention on ${this.path}: opened read-only`),
      );
    }
    if (this.#closed) return Promise.reject(new StoreClosedError(this.path));
    const cutoffUs = Math.round((nowMs - retentionMs) * 1000);
    return this.#exclusive(async () => {
      const deleted = {} as Record<DataTable, number>;
      let dropped: Partial<Record<DataTable, number>> = {};
      const conn = this.#writer;
      await conn.run("BEGIN TRANSACTION");
      try {
        for (const table of DATA_TABLES) {
          // Keep the high-water mark: seq_ids must not restart if every
          // row goes.
          await conn.run(
            `INSERT INTO agent_meta VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
            [seqHighKey(table), String(this.#nextSeq[table] - 1)],
          );
          const keep = this.#retentionHold?.keepAbove()[table];
          const result = await conn.run(
            `DELETE FROM ${table} WHERE ${
              TIME_COLUMN[table]
            } < make_timestamp(${cutoffUs}::BIGINT)${
              keep === undefined ? "" : ` AND seq_id <= ${keep}`
            }`,
          );
          deleted[table] = result.rowsChanged;
        }
        if (this.#retentionHold !== undefined) {
          dropped = await dropOverCap(conn, cutoffUs, this.#retentionHold);
        }
        await conn.run("COMMIT");
      } catch (error) {
        await conn.run("ROLLBACK").catch(() => {});
        throw error;
      }
      // Moves the WAL into the database file on this timer rather than
      // inside an ingest commit (see checkpoint_threshold).
      await conn.run("CHECKPOINT");
      for (const table of DATA_TABLES) {
        this.#count(`store.${table}.expired`, deleted[table]);
        const over = dropped[table] ?? 0;
        this.#count(`forward.dropped.over_cap.${table}`, over);
        deleted[table] += over;
      }
      return deleted;
    });
  }

  /**
   * Keeps rows the forwarder has not yet sent past retention (see
   * {@linkcode RetentionHold}); `undefined` removes the hold.
   */
  setRetentionHold(hold: RetentionHold | undefined): void {
    this.#retentionHold = hold;
  }

  /** Sets `agent_meta` keys in one transaction (after queued writes). */
  writeMeta(entries: Record<string, string>): Promise<void> {
    if (this.readOnly) {
      return Promise.reject(
        new Error(`Cannot write to ${this.path}: opened read-only`),
      );
    }
    if (this.#closed) return Promise.reject(new StoreClosedError(this.path));
    return this.#exclusive(async () => {
      const conn = this.#writer;
      await conn.run("BEGIN TRANSACTION");
      try {
        for (const [key, value] of Object.entries(entries)) {
          await conn.run(
            `INSERT INTO agent_meta VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
            [key, value],
          );
        }
        await conn.run("COMMIT");
      } catch (error) {
        await conn.run("ROLLBACK").catch(() => {});
        throw error;
      }
    });
  }

  /** File sizes, rows per table, session and seq_ids. */
  async stats(): Promise<StoreStats> {
    const reader = await this.#reader.runAndReadAll(
      DATA_TABLES.map((t) => `SELECT '${t}', count(*)::DOUBLE FROM ${t}`)
        .join(" UNION ALL "),
    );
    const rows = {} as Record<DataTable, number>;
    for (const [table, count] of reader.getRows()) {
      rows[table as DataTable] = Number(count);
    }
    const maxSeqIds = { ...this.#committedSeq };
    return {
      path: this.path,
      fileBytes: await fileSize(this.path),
      walBytes: await fileSize(`${this.path}.wal`),
      rows,
      sessionId: this.sessionId,
      maxSeqIds,
    };
  }

  /**
   * Commits what is queued, checkpoints and closes the database. Writes
   * made after this call reject. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Same as `close` (the agent's component lifecycle). */
  shutdown(): Promise<void> {
    return this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#retentionTimer !== undefined) {
      clearInterval(this.#retentionTimer);
      this.#retentionTimer = undefined;
    }
    try {
      if (!this.readOnly) {
        await this.flush();
        await this.#exclusive(() => this.#writer.run("CHECKPOINT"));
      }
    } finally {
      await this.#lane.catch(() => {});
      this.#closeWriters();
      if (this.#reader !== this.#writer) this.#reader.closeSync();
      this.#writer.closeSync();
      this.#instance.closeSync();
    }
  }

  #closeWriters(): void {
    const writers = this.#writers;
    this.#writers = undefined;
    if (writers === undefined) return;
    const appenders = [
      writers.http.appender,
      writers.grpc.appender,
      writers.sql.appender,
      ...writers.spans.appenders,
    ];
    for (const appender of appenders) {
      try {
        appender.closeSync();
      } catch {
        // Closing flushes: after a failed transaction there may be rows
        // the table refused; they were already reported.
      }
    }
  }

  /** Runs `fn` after everything else that uses the writer connection. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lane.then(fn, fn);
    this.#lane = run.catch(() => {});
    return run;
  }

  #scheduleCommit(): void {
    if (this.#commitScheduled) return;
    this.#commitScheduled = true;
    this.#exclusive(async () => {
      this.#commitScheduled = false;
      await this.#commitNext();
      if (this.#queue.length > 0) this.#scheduleCommit();
    });
  }

  /** Takes queued batches (up to maxRowsPerCommit rows) into one transaction. */
  async #commitNext(): Promise<void> {
    if (this.#queue.length === 0) return;
    let take = 0;
    let rows = 0;
    while (take < this.#queue.length) {
      const next = this.#queue[take]!.rows;
      if (take > 0 && rows + next > this.#maxRowsPerCommit) break;
      rows += next;
      take++;
    }
    const group = this.#queue.splice(0, take);
    const batch = this.#validRecords(mergeBatches(group));
    const seqBefore = { ...this.#nextSeq };
    let duplicates = 0;
    try {
      const writers = await this.#currentWriters();
      const json = new JsonCache();
      const agentId = this.#agentId;
      await this.#writer.run("BEGIN TRANSACTION");
      for (const kind of ["http", "grpc", "sql"] as const) {
        const records = batch[kind];
        if (records.length === 0) continue;
        const table = KIND_TABLE[kind];
        const writer = writers[kind] as MetricWriter<MetricWindow>;
        await writer.append(records, {
          firstSeq: this.#nextSeq[table],
          agentId,
          json,
        });
        this.#nextSeq[table] += records.length;
      }
      if (batch.spans.length > 0) {
        const result = await writers.spans.append(batch.spans, {
          firstSeq: this.#nextSeq.beyla_traces,
          agentId,
          json,
        });
        this.#nextSeq.beyla_traces += result.inserted;
        duplicates = result.duplicates;
      }
      await this.#writer.run("COMMIT");
    } catch (error) {
      await this.#writer.run("ROLLBACK").catch(() => {});
      Object.assign(this.#nextSeq, seqBefore);
      this.#writersBroken = true;
      this.#pendingRows -= rows;
      for (const kind of KINDS) {
        this.#count(`store.${kind}.dropped.write_error`, batch[kind].length);
      }
      const failure = new StoreWriteError(
        `Cannot store ${rows} rows: ${(error as Error).message ?? error}`,
        true,
        { cause: error },
      );
      for (const pending of group) pending.reject(failure);
      return;
    }
    this.#pendingRows -= rows;
    for (const table of DATA_TABLES) {
      this.#committedSeq[table] = this.#nextSeq[table] - 1;
    }
    this.#count("store.commits");
    for (const kind of KINDS) {
      const stored = batch[kind].length -
        (kind === "spans" ? duplicates : 0);
      this.#count(`store.${kind}.written`, stored);
    }
    this.#count("store.spans.duplicate", duplicates);
    for (const pending of group) pending.resolve();
  }

  /** The writers, recreated after a failed transaction left them unclear. */
  async #currentWriters(): Promise<Writers> {
    if (this.#writers === undefined || this.#writersBroken) {
      this.#closeWriters();
      this.#writers = await createWriters(this.#writer);
      this.#writersBroken = false;
    }
    return this.#writers;
  }

  /** `batch` without the records that cannot be stored (counted). */
  #validRecords(batch: RecordBatch): RecordBatch {
    const out = { ...batch };
    for (const kind of ["http", "grpc", "sql"] as const) {
      const records = batch[kind] as readonly MetricWindow[];
      if (!records.every(validMetric)) {
        const valid = records.filter(validMetric);
        this.#count(
          `store.${kind}.rejected.invalid`,
          records.length - valid.length,
        );
        (out as Record<string, unknown>)[kind] = valid;
      }
    }
    if (!batch.spans.every(validSpan)) {
      const valid: SpanRecord[] = batch.spans.filter(validSpan);
      this.#count(
        "store.spans.rejected.invalid",
        batch.spans.length - valid.length,
      );
      out.spans = valid;
    }
    return out;
  }

  #count(name: string, n = 1): void {
    this.#counters?.add(name, n);
  }
}

/**
 * What retention keeps for the colony forwarder: rows with a seq_id above
 * `keepAbove()[table]` stay past the retention period, unless the rows so
 * held take more than `maxHeldBytes` (estimated from the database's used
 * blocks per row); then the oldest held rows are deleted anyway and counted
 * `forward.dropped.over_cap.<table>`.
 */
export interface RetentionHold {
  keepAbove(): Record<DataTable, number>;
  maxHeldBytes: number;
}

/** Deletes the oldest held rows beyond the hold's cap; rows per table. */
async function dropOverCap(
  conn: DuckDBConnection,
  cutoffUs: number,
  hold: RetentionHold,
): Promise<Partial<Record<DataTable, number>>> {
  const keep = hold.keepAbove();
  const cutoff = `make_timestamp(${cutoffUs}::BIGINT)`;
  const counts = await conn.runAndReadAll(
    DATA_TABLES.map((t) =>
      `SELECT '${t}', count(*)::DOUBLE,
        count(*) FILTER (WHERE ${TIME_COLUMN[t]} < ${cutoff}
          AND seq_id > ${keep[t]})::DOUBLE FROM ${t}`
    ).join(" UNION ALL "),
  );
  let total = 0;
  let heldRows = 0;
  const held = {} as Record<DataTable, number>;
  for (const [table, all, h] of counts.getRowsJS()) {
    total += Number(all);
    heldRows += Number(h);
    held[table as DataTable] = Number(h);
  }
  if (heldRows === 0) return {};
  const size = await conn.runAndReadAll(
    `SELECT (used_blocks * block_size)::DOUBLE FROM pragma_database_size()`,
  );
  const usedBytes = Number(size.getRowsJS()[0]?.[0] ?? 0);
  const bytesPerRow = Math.max(1, usedBytes / Math.max(1, total));
  const heldBytes = heldRows * bytesPerRow;
  if (heldBytes <= hold.maxHeldBytes) return {};
  const share = 1 - hold.maxHeldBytes / heldBytes;
  const dropped: Partial<Record<DataTable, number>> = {};
  for (const table of DATA_TABLES) {
    const n = Math.min(held[table], Math.ceil(held[table] * share));
    if (n === 0) continue;
    const result = await conn.run(
      `DELETE FROM ${table} WHERE seq_id IN (
         SELECT seq_id FROM ${table}
         WHERE ${TIME_COLUMN[table]} < ${cutoff} AND seq_id > ${keep[table]}
         ORDER BY seq_id LIMIT ${n})`,
    );
    dropped[table] = result.rowsChanged;
  }
  return dropped;
}

function mergeBatches(group: readonly Pending[]): RecordBatch {
  if (group.length === 1) return group[0]!.batch;
  const merged: RecordBatch = { http: [], grpc: [], sql: [], spans: [] };
  for (const { batch } of group) {
    for (const r of batch.http) merged.http.push(r);
    for (const r of batch.grpc) merged.grpc.push(r);
    for (const r of batch.sql) merged.sql.push(r);
    for (const r of batch.spans) merged.spans.push(r);
  }
  return merged;
}

async function createWriters(conn: DuckDBConnection): Promise<Writers> {
  const metrics = await createMetricWriters(conn);
  return { ...metrics, spans: await SpanWriter.create(conn) };
}

/** Opens the instance, turning DuckDB's lock failure into one clear line. */
async function createInstance(
  path: string,
  options: Record<string, string>,
): Promise<DuckDBInstance> {
  try {
    return await DuckDBInstance.create(path, options);
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (/Could not set lock on file/i.test(message)) {
      const pid = /\(PID (\d+)\)/.exec(message)?.[1];
      throw new StoreLockedError(
        `Cannot open database ${path}: it is locked by another process${
          pid ? ` (PID ${pid})` : ""
        }; only one agent can use a database file: query the running agent instead`,
        { cause: error },
      );
    }
    throw new Error(`Cannot open database ${path}: ${firstLine(message)}`, {
      cause: error,
    });
  }
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0] ?? text;
}

/** Next seq_id per table: past both the stored rows and the recorded high. */
async function loadNextSeqs(
  conn: DuckDBConnection,
): Promise<Record<DataTable, number>> {
  const next = {} as Record<DataTable, number>;
  for (const table of DATA_TABLES) {
    const reader = await conn.runAndReadAll(
      `SELECT coalesce(max(seq_id), 0)::DOUBLE FROM ${table}`,
    );
    const stored = Number(reader.getRows()[0]?.[0] ?? 0);
    const high = Number(await readMeta(conn, seqHighKey(table)) ?? 0);
    next[table] = Math.max(stored, Number.isFinite(high) ? high : 0) + 1;
  }
  return next;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}
