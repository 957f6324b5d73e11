/**
 * The colony's DuckDB: the agent's tables (src/store/schema.ts, with every
 * row's `agent_id` set to the agent that sent it and `seq_id` to the
 * agent's seq_id) plus the colony's own bookkeeping:
 *
 * - `colony_checkpoints (agent_id, session_id, table_name, acked_seq_id)`:
 *   the highest seq_id stored per agent, agent session and table;
 * - `colony_agents`: last session, first and last push, rows stored.
 *
 * `apply` stores a batch exactly once: in one transaction it skips rows at
 * or below the checkpoint (counted as duplicates), appends the rest and
 * advances the checkpoints. Transactions run one at a time.
 *
 * Counters: `colony.<kind>.stored`, `colony.<kind>.duplicates`,
 * `colony.commits`, `colony.<table>.expired`, `colony.retention.failed`.
 *
 * @module
 */
import { dirname } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { Counters } from "../model/counters.ts";
import {
  emptyBatch,
  type MetricWindow,
  type RecordBatch,
} from "../model/records.ts";
import { StoreLockedError, StoreWriteError } from "../store/errors.ts";
import {
  DATA_TABLES,
  type DataTable,
  ensureSchema,
  TIME_COLUMN,
} from "../store/schema.ts";
import {
  createMetricWriters,
  JsonCache,
  type MetricWriter,
  SpanWriter,
} from "../store/writers.ts";
import type { PushedBatch, SeqRecords } from "./rows.ts";

export type Kind = "http" | "grpc" | "sql" | "spans";
export const KINDS: readonly Kind[] = ["http", "grpc", "sql", "spans"];
export const KIND_TABLE: Record<Kind, DataTable> = {
  http: "beyla_http_metrics",
  grpc: "beyla_grpc_metrics",
  sql: "beyla_sql_metrics",
  spans: "beyla_traces",
};

/** What one `apply` did. */
export interface ApplyResult {
  /** Checkpoint per kind after the batch. */
  acked: Record<Kind, number>;
  stored: number;
  duplicates: number;
  /** The records stored now (for followers such as /metrics). */
  batch: RecordBatch;
}

export interface AgentInfo {
  agent_id: string;
  session_id: string;
  first_seen_ms: number;
  last_push_ms: number;
  pushes: number;
  rows_stored: number;
  duplicates: number;
  via: string;
}

type Writers = Awaited<ReturnType<typeof createMetricWriters>> & {
  spans: SpanWriter;
};

const META_DDL = [
  `CREATE TABLE IF NOT EXISTS colony_checkpoints (
    agent_id VARCHAR NOT NULL,
    session_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    acked_seq_id UBIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (agent_id, session_id, table_name))`,
  `CREATE TABLE IF NOT EXISTS colony_agents (
    agent_id VARCHAR PRIMARY KEY,
    session_id VARCHAR NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_push TIMESTAMP NOT NULL,
    pushes UBIGINT NOT NULL,
    rows_stored UBIGINT NOT NULL,
    duplicates UBIGINT NOT NULL,
    via VARCHAR NOT NULL)`,
];

const checkpointKey = (agentId: string, sessionId: string, kind: Kind) =>
  JSON.stringify([agentId, sessionId, kind]);

/** The colony's store. See the module notes. */
export class ColonyStore {
  readonly #instance: DuckDBInstance;
  readonly #writer: DuckDBConnection;
  readonly #reader: DuckDBConnection;
  readonly #counters: Counters;
  readonly #checkpoints = new Map<string, number>();
  #writers: Writers | undefined;
  #lane: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;
  #retentionTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    readonly path: string,
    init: {
      instance: DuckDBInstance;
      writer: DuckDBConnection;
      reader: DuckDBConnection;
      counters: Counters;
    },
  ) {
    this.#instance = init.instance;
    this.#writer = init.writer;
    this.#reader = init.reader;
    this.#counters = init.counters;
  }

  /** Opens (or creates) the colony database. */
  static async open(
    path: string,
    options: { counters: Counters; memoryLimit?: string },
  ): Promise<ColonyStore> {
    if (path !== ":memory:") {
      await Deno.mkdir(dirname(path), { recursive: true });
    }
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, {
        memory_limit: options.memoryLimit ?? "1GB",
        checkpoint_threshold: "256MB",
      });
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (/Could not set lock on file/i.test(message)) {
        throw new StoreLockedError(
          `Cannot open database ${path}: it is locked by another process`,
          { cause: error },
        );
      }
      throw new Error(
        `Cannot open database ${path}: ${message.split("\n")[0]}`,
        {
          cause: error,
        },
      );
    }
    try {
      const writer = await instance.connect();
      await ensureSchema(writer);
      for (const ddl of META_DDL) await writer.run(ddl);
      const reader = await instance.connect();
      const store = new ColonyStore(path, {
        instance,
        writer,
        reader,
        counters: options.counters,
      });
      const rows = await writer.runAndReadAll(
        `SELECT agent_id, session_id, table_name, acked_seq_id::DOUBLE FROM colony_checkpoints`,
      );
      for (const [agent, session, kind, acked] of rows.getRowsJS()) {
        store.#checkpoints.set(
          checkpointKey(String(agent), String(session), kind as Kind),
          Number(acked),
        );
      }
      return store;
    } catch (error) {
      instance.closeSync();
      throw error;
    }
  }

  /** The connection queries run on; sees committed data only. */
  get connection(): DuckDBConnection {
    return this.#reader;
  }

  /** The checkpoint (0 when none) of one agent session and kind. */
  checkpoint(agentId: string, sessionId: string, kind: Kind): number {
    return this.#checkpoints.get(checkpointKey(agentId, sessionId, kind)) ?? 0;
  }

  /**
   * Stores the rows of `batch` above the checkpoints, exactly once.
   * `via` says how it came ("push" or "pull").
   *
   * @throws StoreWriteError when the transaction failed (nothing stored; retry can help).
   */
  apply(batch: PushedBatch, via: "push" | "pull"): Promise<ApplyResult> {
    return this.#exclusive(() => this.#apply(batch, via));
  }

  async #apply(batch: PushedBatch, via: string): Promise<ApplyResult> {
    const { agentId, sessionId } = batch;
    const fresh = emptyBatch();
    const freshSeqs: Record<Kind, number[]> = {
      http: [],
      grpc: [],
      sql: [],
      spans: [],
    };
    const acked = {} as Record<Kind, number>;
    let duplicates = 0;
    for (const kind of KINDS) {
      const from = batch[kind] as SeqRecords<unknown>;
      const mark = this.checkpoint(agentId, sessionId, kind);
      let high = mark;
      for (let i = 0; i < from.seqs.length; i++) {
        const seq = from.seqs[i]!;
        if (seq <= mark) {
          duplicates++;
          continue;
        }
        (fresh[kind] as unknown[]).push(from.records[i]);
        freshSeqs[kind].push(seq);
        if (seq > high) high = seq;
      }
      acked[kind] = high;
    }
    let spanDuplicates = 0;
    const conn = this.#writer;
    const nowUs = Date.now() * 1000;
    try {
      const writers = await this.#currentWriters();
      const json = new JsonCache();
      await conn.run("BEGIN TRANSACTION");
      for (const kind of ["http", "grpc", "sql"] as const) {
        const writer = writers[kind] as MetricWriter<MetricWindow>;
        const records = fresh[kind] as MetricWindow[];
        await appendRuns(
          records,
          freshSeqs[kind],
          (records, firstSeq) =>
            writer.append(records, { firstSeq, agentId, json }),
        );
      }
      await appendRuns(
        fresh.spans,
        freshSeqs.spans,
        async (spans, firstSeq) => {
          const result = await writers.spans.append(spans, {
            firstSeq,
            agentId,
            json,
          });
          spanDuplicates += result.duplicates;
        },
      );
      for (const kind of KINDS) {
        if (acked[kind] === this.checkpoint(agentId, sessionId, kind)) {
          continue;
        }
        await conn.run(
          `INSERT INTO colony_checkpoints VALUES ($1, $2, $3, $4, make_timestamp($5::BIGINT))
           ON CONFLICT DO UPDATE SET acked_seq_id = excluded.acked_seq_id,
             updated_at = excluded.updated_at`,
          [agentId, sessionId, kind, acked[kind], nowUs],
        );
      }
      const stored = freshSeqs.http.length + freshSeqs.grpc.length +
        freshSeqs.sql.length + freshSeqs.spans.length - spanDuplicates;
      await conn.run(
        `INSERT INTO colony_agents VALUES ($1, $2, make_timestamp($3::BIGINT),
           make_timestamp($3::BIGINT), 1, $4, $5, $6)
         ON CONFLICT DO UPDATE SET session_id = excluded.session_id,
           last_push = excluded.last_push, pushes = colony_agents.pushes + 1,
           rows_stored = colony_agents.rows_stored + excluded.rows_stored,
           duplicates = colony_agents.duplicates + excluded.duplicates,
           via = excluded.via`,
        [agentId, sessionId, nowUs, stored, duplicates + spanDuplicates, via],
      );
      await conn.run("COMMIT");
      for (const kind of KINDS) {
        this.#checkpoints.set(
          checkpointKey(agentId, sessionId, kind),
          acked[kind],
        );
        const n = freshSeqs[kind].length -
          (kind === "spans" ? spanDuplicates : 0);
        this.#counters.add(`colony.${kind}.stored`, n);
      }
      this.#counters.add("colony.commits");
      this.#counters.add("colony.rows.duplicates", duplicates);
      this.#counters.add("colony.spans.duplicate_span_id", spanDuplicates);
      return {
        acked,
        stored,
        duplicates: duplicates + spanDuplicates,
        batch: fresh,
      };
    } catch (error) {
      await conn.run("ROLLBACK").catch(() => {});
      this.#closeWriters();
      throw new StoreWriteError(
        `Cannot store the batch of agent ${agentId}: ${
          (error as Error).message ?? error
        }`,
        true,
        { cause: error },
      );
    }
  }

  /** Deletes rows older than each table's retention; returns rows deleted. */
  runRetention(
    retention: Record<DataTable, number>,
    nowMs = Date.now(),
  ): Promise<Record<DataTable, number>> {
    return this.#exclusive(async () => {
      const deleted = {} as Record<DataTable, number>;
      const conn = this.#writer;
      await conn.run("BEGIN TRANSACTION");
      try {
        for (const table of DATA_TABLES) {
          const cutoffUs = Math.round((nowMs - retention[table]) * 1000);
          const result = await conn.run(
            `DELETE FROM ${table} WHERE ${
              TIME_COLUMN[table]
            } < make_timestamp(${cutoffUs}::BIGINT)`,
          );
          deleted[table] = result.rowsChanged;
        }
        await conn.run("COMMIT");
      } catch (error) {
        await conn.run("ROLLBACK").catch(() => {});
        throw error;
      }
      await conn.run("CHECKPOINT");
      for (const table of DATA_TABLES) {
        this.#counters.add(`colony.${table}.expired`, deleted[table]);
      }
      return deleted;
    });
  }

  /**
   * Runs retention once now (resolves when done) and then every
   * `intervalMs`.
   */
  async startRetention(
    retention: Record<DataTable, number>,
    intervalMs: number,
  ): Promise<void> {
    const run = () =>
      this.runRetention(retention).then(
        () => {},
        () => this.#counters.add("colony.retention.failed"),
      );
    this.#retentionTimer = setInterval(run, intervalMs);
    Deno.unrefTimer(this.#retentionTimer as unknown as number);
    await run();
  }

  /** Agents seen, with their last push. */
  async agents(): Promise<AgentInfo[]> {
    const reader = await this.#reader.runAndReadAll(
      `SELECT agent_id, session_id, epoch_ms(first_seen)::DOUBLE,
         epoch_ms(last_push)::DOUBLE, pushes::DOUBLE, rows_stored::DOUBLE,
         duplicates::DOUBLE, via
       FROM colony_agents ORDER BY agent_id`,
    );
    return reader.getRowsJS().map((r) => ({
      agent_id: String(r[0]),
      session_id: String(r[1]),
      first_seen_ms: Number(r[2]),
      last_push_ms: Number(r[3]),
      pushes: Number(r[4]),
      rows_stored: Number(r[5]),
      duplicates: Number(r[6]),
      via: String(r[7]),
    }));
  }

  /** Every checkpoint: agent → session → kind → acked seq_id. */
  checkpoints(): Record<string, Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, Record<string, number>>> = {};
    for (const [key, acked] of this.#checkpoints) {
      const [agent, session, kind] = JSON.parse(key) as string[];
      ((out[agent!] ??= {})[session!] ??= {})[kind!] = acked;
    }
    return out;
  }

  /** Rows per table and per agent. */
  async rowCounts(): Promise<
    {
      tables: Record<DataTable, number>;
      agents: Record<string, Record<DataTable, number>>;
    }
  > {
    const reader = await this.#reader.runAndReadAll(
      DATA_TABLES.map((t) =>
        `SELECT '${t}', agent_id, count(*)::DOUBLE FROM ${t} GROUP BY agent_id`
      ).join(" UNION ALL "),
    );
    const tables = Object.fromEntries(DATA_TABLES.map((t) => [t, 0])) as Record<
      DataTable,
      number
    >;
    const agents: Record<string, Record<DataTable, number>> = {};
    for (const [table, agent, n] of reader.getRowsJS()) {
      tables[table as DataTable] += Number(n);
      (agents[String(agent)] ??= Object.fromEntries(
        DATA_TABLES.map((t) => [t, 0]),
      ) as Record<DataTable, number>)[table as DataTable] = Number(n);
    }
    return { tables, agents };
  }

  /** Waits for the running transaction, checkpoints and closes. Safe twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#retentionTimer !== undefined) {
        clearInterval(this.#retentionTimer);
      }
      try {
        await this.#exclusive(() => this.#writer.run("CHECKPOINT"));
      } finally {
        await this.#lane.catch(() => {});
        this.#closeWriters();
        this.#reader.closeSync();
        this.#writer.closeSync();
        this.#instance.closeSync();
      }
    })();
    return this.#closing;
  }

  shutdown(): Promise<void> {
    return this.close();
  }

  /** Runs SQL on the writer connection, between transactions (benchmarks, tests). */
  runExclusive<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.#exclusive(() => fn(this.#writer));
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lane.then(fn, fn);
    this.#lane = run.catch(() => {});
    return run;
  }

  async #currentWriters(): Promise<Writers> {
    if (this.#writers === undefined) {
      const metrics = await createMetricWriters(this.#writer);
      this.#writers = {
        ...metrics,
        spans: await SpanWriter.create(this.#writer),
      };
    }
    return this.#writers;
  }

  #closeWriters(): void {
    const w = this.#writers;
    this.#writers = undefined;
    if (w === undefined) return;
    for (
      const appender of [
        w.http.appender,
        w.grpc.appender,
        w.sql.appender,
        ...w.spans.appenders,
      ]
    ) {
      try {
        appender.closeSync();
      } catch { /* already reported by the failed transaction */ }
    }
  }
}

/**
 * Calls `append` once per run of consecutive seq_ids (the writers number
 * rows firstSeq, firstSeq+1, …), so each row keeps the agent's seq_id.
 */
async function appendRuns<R>(
  records: R[],
  seqs: number[],
  append: (records: R[], firstSeq: number) => Promise<unknown>,
): Promise<void> {
  let start = 0;
  for (let i = 1; i <= records.length; i++) {
    if (i === records.length || seqs[i] !== seqs[i - 1]! + 1) {
      await append(records.slice(start, i), seqs[start]!);
      start = i;
    }
  }
}
