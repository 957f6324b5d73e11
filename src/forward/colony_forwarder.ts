/**
 * Pushes stored rows to a colony (`forward:` in the config) with
 * `coral.colony.v1.ColonyService/PushBatch` (Connect unary, protobuf,
 * bearer token), exactly once from the colony's point of view:
 *
 * - every row carries its seq_id; rows are read from the store in seq_id
 *   order per table, after the last acknowledged seq_id;
 * - the acknowledged seq_ids (the colony's checkpoints in its answer) are
 *   persisted in `agent_meta` (`forward.acked.<table>`, with
 *   `forward.session_id`), so a restarted agent resumes from them; a batch
 *   sent again after a crash is skipped by the colony by seq_id;
 * - while rows wait, retention keeps them (see `RetentionHold` in
 *   store.ts), up to `max_unforwarded_bytes`;
 * - failures back off exponentially (with jitter, capped) and never stop
 *   the loop.
 *
 * Counters: `forward.pushes`, `forward.rows.sent.<kind>`,
 * `forward.failed.<reason>` (network, timeout, http_<status>),
 * `forward.dropped.over_cap.<table>` (by the store).
 *
 * @module
 */
import type { Counters } from "../model/counters.ts";
import { readMeta } from "../store/schema.ts";
import {
  readRowsAfter,
  type StoredRows,
  toPushRow,
} from "../store/rows_after.ts";
import type { DuckDbStore, RecordKind } from "../store/store.ts";
import { KIND_TABLE } from "../store/store.ts";
import type { DataTable } from "../store/schema.ts";
import { coralType, longToNumber } from "../serve/coral_protos.ts";

export const PUSH_BATCH_PATH = "/coral.colony.v1.ColonyService/PushBatch";

const KINDS: readonly RecordKind[] = ["http", "grpc", "sql", "spans"];
const ACK_FIELD: Record<RecordKind, string> = {
  http: "httpAckedSeqId",
  grpc: "grpcAckedSeqId",
  sql: "sqlAckedSeqId",
  spans: "spansAckedSeqId",
};

export interface ColonyForwarderOptions {
  store: DuckDbStore;
  counters: Counters;
  agentId: string;
  colonyUrl: string;
  token?: string;
  intervalMs: number;
  batchSize: number;
  timeoutMs: number;
  /** First back-off after a failure; doubles up to `maxBackoffMs`. Default 500. */
  minBackoffMs?: number;
  /** Default 30 000. */
  maxBackoffMs?: number;
}

/** What `status` shows under `forward`. */
export interface ForwardStatus {
  colony: string;
  acked_seq_ids: Record<DataTable, number>;
  pending_rows: Record<DataTable, number>;
  last_success: string | null;
  last_error: string | null;
  next_retry: string | null;
  consecutive_failures: number;
}

/** A failed push; `retryable` says whether trying again can help. */
export class PushError extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** See the module notes. Start with `start()`, stop with `shutdown()`. */
export class ColonyForwarder {
  readonly #o: ColonyForwarderOptions;
  readonly #acked: Record<RecordKind, number> = {
    http: 0,
    grpc: 0,
    sql: 0,
    spans: 0,
  };
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #abort = new AbortController();
  #failures = 0;
  #lastError: string | null = null;
  #lastSuccess: number | null = null;
  #nextRetry: number | null = null;

  constructor(options: ColonyForwarderOptions) {
    this.#o = options;
  }

  /** Acked seq_id per table, for the store's retention hold. */
  keepAbove(): Record<DataTable, number> {
    const out = {} as Record<DataTable, number>;
    for (const kind of KINDS) out[KIND_TABLE[kind]] = this.#acked[kind];
    return out;
  }

  /**
   * Loads the persisted acks (they count only for this database's
   * session). Call before retention first runs.
   */
  async load(): Promise<void> {
    const conn = this.#o.store.connection;
    const session = await readMeta(conn, "forward.session_id");
    if (session !== this.#o.store.sessionId) return;
    for (const kind of KINDS) {
      const value = await readMeta(conn, ackKey(kind));
      const n = Number(value ?? 0);
      this.#acked[kind] = Number.isSafeInteger(n) && n > 0 ? n : 0;
    }
  }

  start(): Promise<void> {
    if (this.#running) return Promise.resolve();
    this.#running = true;
    this.#loop = this.#run();
    return Promise.resolve();
  }

  /** Stops the loop (an in-flight push is aborted). Safe twice. */
  async shutdown(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }

  async status(): Promise<ForwardStatus> {
    const pending = {} as Record<DataTable, number>;
    const acked = this.keepAbove();
    const reader = await this.#o.store.connection.runAndReadAll(
      KINDS.map((k) => {
        const t = KIND_TABLE[k];
        return `SELECT '${t}', count(*)::DOUBLE FROM ${t} WHERE seq_id > ${
          this.#acked[k]
        }`;
      }).join(" UNION ALL "),
    );
    for (const [table, n] of reader.getRowsJS()) {
      pending[table as DataTable] = Number(n);
    }
    const iso = (ms: number | null) =>
      ms === null ? null : new Date(ms).toISOString();
    return {
      colony: this.#o.colonyUrl,
      acked_seq_ids: acked,
      pending_rows: pending,
      last_success: iso(this.#lastSuccess),
      last_error: this.#lastError,
      next_retry: iso(this.#nextRetry),
      consecutive_failures: this.#failures,
    };
  }

  /**
   * Pushes one batch (up to `batchSize` rows) if any row waits. Returns
   * whether a table had more rows than fitted. Throws `PushError`.
   */
  async pushOnce(): Promise<{ sent: number; more: boolean }> {
    const { store, batchSize } = this.#o;
    const read = {} as { [K in RecordKind]: StoredRows[K][] };
    for (const kind of KINDS) {
      (read as Record<RecordKind, unknown[]>)[kind] = await readRowsAfter(
        store.connection,
        kind,
        { afterSeq: this.#acked[kind], limit: batchSize },
      );
    }
    // Share the batch between the tables: round-robin in row count.
    const take: Record<RecordKind, number> = {
      http: 0,
      grpc: 0,
      sql: 0,
      spans: 0,
    };
    let budget = batchSize;
    let progress = true;
    while (budget > 0 && progress) {
      progress = false;
      const open = KINDS.filter((k) => take[k] < read[k].length);
      const share = Math.max(1, Math.floor(budget / Math.max(1, open.length)));
      for (const kind of open) {
        const n = Math.min(share, read[kind].length - take[kind], budget);
        take[kind] += n;
        budget -= n;
        if (n > 0) progress = true;
      }
    }
    const sent = KINDS.reduce((n, k) => n + take[k], 0);
    const more = KINDS.some((k) => read[k].length > take[k]) ||
      KINDS.some((k) => read[k].length === batchSize);
    if (sent === 0) return { sent, more: false };
    const request = {
      agentId: this.#o.agentId,
      sessionId: store.sessionId,
      http: read.http.slice(0, take.http).map((r) => toPushRow("http", r)),
      grpc: read.grpc.slice(0, take.grpc).map((r) => toPushRow("grpc", r)),
      sql: read.sql.slice(0, take.sql).map((r) => toPushRow("sql", r)),
      spans: read.spans.slice(0, take.spans).map((r) => toPushRow("spans", r)),
    };
    const answer = await this.#post(request);
    const next = { ...this.#acked };
    for (const kind of KINDS) {
      next[kind] = longToNumber(answer[ACK_FIELD[kind]]);
    }
    const meta: Record<string, string> = {
      "forward.session_id": store.sessionId,
    };
    for (const kind of KINDS) meta[ackKey(kind)] = String(next[kind]);
    await store.writeMeta(meta);
    Object.assign(this.#acked, next);
    const counters = this.#o.counters;
    counters.add("forward.pushes");
    for (const kind of KINDS) {
      counters.add(`forward.rows.sent.${kind}`, take[kind]);
    }
    return { sent, more };
  }

  async #post(
    request: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const Req = coralType("coral.colony.v1.PushBatchRequest");
    const Res = coralType("coral.colony.v1.PushBatchResponse");
    const body = new Uint8Array(Req.encode(Req.fromObject(request)).finish());
    const headers: Record<string, string> = {
      "content-type": "application/proto",
      "connect-protocol-version": "1",
    };
    if (this.#o.token !== undefined) {
      headers.authorization = `Bearer ${this.#o.token}`;
    }
    const url = new URL(PUSH_BATCH_PATH, this.#o.colonyUrl).toString();
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([timeout, this.#abort.signal]),
      });
    } catch (error) {
      const timedOut = timeout.aborted;
      throw new PushError(
        `Cannot push to ${url}: ${
          timedOut
            ? `no answer within ${this.#o.timeoutMs} ms`
            : error instanceof Error
            ? error.message
            : error
        }`,
        timedOut ? "timeout" : "network",
        true,
      );
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!response.ok) {
      let detail = new TextDecoder().decode(bytes).slice(0, 500);
      try {
        const e = JSON.parse(detail);
        detail = `${e.code}: ${e.message}`;
      } catch { /* not a Connect error body */ }
      const s = response.status;
      throw new PushError(
        `Cannot push to ${url}: HTTP ${s}: ${detail}`,
        `http_${s}`,
        s === 408 || s === 429 || s >= 500,
      );
    }
    try {
      return Res.toObject(Res.decode(bytes), { longs: String });
    } catch (error) {
      throw new PushError(
        `Cannot push to ${url}: invalid PushBatchResponse: ${
          error instanceof Error ? error.message : error
        }`,
        "bad_response",
        true,
      );
    }
  }

  async #run(): Promise<void> {
    const min = this.#o.minBackoffMs ?? 500;
    const max = this.#o.maxBackoffMs ?? 30_000;
    while (this.#running) {
      let waitMs = this.#o.intervalMs;
      try {
        const { more } = await this.pushOnce();
        this.#failures = 0;
        this.#lastSuccess = Date.now();
        this.#nextRetry = null;
        if (more) waitMs = 0;
      } catch (error) {
        if (!this.#running) break;
        const reason = error instanceof PushError ? error.reason : "internal";
        this.#o.counters.add(`forward.failed.${reason}`);
        this.#lastError = error instanceof Error
          ? error.message
          : String(error);
        this.#failures++;
        // Full jitter over the upper half: min·2^(n-1), capped at max.
        const ceiling = Math.min(
          max,
          min * 2 ** Math.min(30, this.#failures - 1),
        );
        waitMs = ceiling / 2 + Math.random() * ceiling / 2;
        this.#nextRetry = Date.now() + waitMs;
      }
      if (!this.#running) break;
      if (waitMs > 0) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#timer = setTimeout(resolve, waitMs);
        });
        this.#wake = undefined;
      }
    }
  }
}

function ackKey(kind: RecordKind): string {
  return `forward.acked.${KIND_TABLE[kind]}`;
}
