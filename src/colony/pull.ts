/**
 * Pulling from agents: for each `pull[]` entry the colony calls the agent's
 * `coral.agent.v1.AgentService/QueryEbpfMetrics` (Connect, protobuf;
 * coral-interfaces §1) every `interval`, asking for rows after its
 * checkpoints, and stores them as pushed rows are stored (exactly once).
 * A new `session_id` (the agent's database was recreated) starts from 0.
 *
 * Coral's messages carry less than the colony's rows: the side, database
 * system and error type come from the attributes `span.kind`,
 * `db.system.name` and `error.type`; the window start is the window end and
 * the latency sum is unknown (0).
 *
 * Counters: `colony.pull.requests`, `colony.pull.failed`,
 * `colony.pull.session_reset`.
 *
 * @module
 */
import type { ColonyConfig } from "../config/colony_schema.ts";
import { parseDuration } from "../config/duration.ts";
import type { Logger } from "../log.ts";
import type { Counters } from "../model/counters.ts";
import type { RecordBatch } from "../model/records.ts";
import { messageType, toPlain } from "./proto.ts";
import { readPushBatch } from "./rows.ts";
import type { ColonyStore, Kind } from "./store.ts";

export const QUERY_PATH = "/coral.agent.v1.AgentService/QueryEbpfMetrics";

type PullEntry = ColonyConfig["pull"][number];
type Obj = Record<string, unknown>;

export interface PullOptions {
  store: ColonyStore;
  counters: Counters;
  log: Logger;
  onStored?: (agentId: string, batch: RecordBatch) => void;
}

/** Polls one agent. `pollOnce` is the unit the timer repeats. */
export class AgentPuller {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** The agent session the checkpoints are for; read from the store at start. */
  #session: string | undefined;

  constructor(
    readonly entry: PullEntry,
    private readonly options: PullOptions,
  ) {}

  async start(): Promise<void> {
    const known = (await this.options.store.agents()).find((a) =>
      a.agent_id === this.entry.agent_id
    );
    this.#session = known?.session_id;
    this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.pollOnce().then(
        () => {},
        (error) => {
          this.options.counters.add("colony.pull.failed");
          this.options.log.warn("pull failed", {
            agent: this.entry.agent_id,
            error: String((error as Error).message ?? error),
          });
        },
      ).finally(() => this.#schedule(parseDuration(this.entry.interval)));
    }, delayMs);
  }

  /** Asks until the agent has nothing newer; returns the rows stored. */
  async pollOnce(): Promise<number> {
    let stored = 0;
    for (let round = 0; round < 100 && !this.#stopped; round++) {
      const session = this.#session;
      const start = (kind: Kind) =>
        session === undefined
          ? 0
          : this.options.store.checkpoint(this.entry.agent_id, session, kind);
      let response = await this.#ask({
        http: start("http"),
        grpc: start("grpc"),
        sql: start("sql"),
        spans: start("spans"),
      });
      const sessionId = String(response.session_id ?? "");
      if (sessionId === "") {
        throw new Error(`${this.entry.url}: the answer has no session_id`);
      }
      if (sessionId !== session) {
        if (session !== undefined) {
          this.options.counters.add("colony.pull.session_reset");
        }
        this.#session = sessionId;
        const reset = (kind: Kind) =>
          this.options.store.checkpoint(this.entry.agent_id, sessionId, kind);
        if (
          session !== undefined ||
          (["http", "grpc", "sql", "spans"] as Kind[]).some((k) => reset(k) > 0)
        ) {
          response = await this.#ask({
            http: reset("http"),
            grpc: reset("grpc"),
            sql: reset("sql"),
            spans: reset("spans"),
          });
        }
      }
      const batch = readPushBatch(
        coralToPush(this.entry.agent_id, sessionId, response),
      );
      const result = await this.options.store.apply(batch, "pull");
      stored += result.stored;
      if (result.stored > 0) {
        this.options.onStored?.(this.entry.agent_id, result.batch);
      }
      const max = this.entry.max_records;
      const full = [
        response.http_metrics,
        response.grpc_metrics,
        response.sql_metrics,
        response.trace_spans,
      ].some((list) => (list as unknown[]).length >= max);
      if (!full) break;
    }
    return stored;
  }

  async #ask(start: Record<Kind, number>): Promise<Obj> {
    this.options.counters.add("colony.pull.requests");
    const request = messageType("coral.agent.v1.QueryEbpfMetricsRequest");
    const body = request.encode(request.fromObject({
      include_traces: true,
      max_traces: 1000,
      max_records: this.entry.max_records,
      http_start_seq_id: start.http,
      grpc_start_seq_id: start.grpc,
      sql_start_seq_id: start.sql,
      traces_start_seq_id: start.spans,
    })).finish();
    const headers: Record<string, string> = {
      "content-type": "application/proto",
      "connect-protocol-version": "1",
    };
    if (this.entry.token) headers.authorization = `Bearer ${this.entry.token}`;
    const url = new URL(QUERY_PATH, this.entry.url);
    const answer = await fetch(url, {
      method: "POST",
      headers,
      body: body as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.timeout(30_000),
    });
    const bytes = new Uint8Array(await answer.arrayBuffer());
    if (!answer.ok) {
      throw new Error(
        `${url} answered ${answer.status}: ${
          new TextDecoder().decode(bytes).slice(0, 200)
        }`,
      );
    }
    const type = messageType("coral.agent.v1.QueryEbpfMetricsResponse");
    return toPlain(type, type.decode(bytes));
  }

  async shutdown(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => {});
  }
}

/** A QueryEbpfMetricsResponse as a PushBatchRequest (plain objects). */
export function coralToPush(
  agentId: string,
  sessionId: string,
  response: Obj,
): Obj {
  const window = (m: Obj, count: unknown, defaultSide: string) => {
    const attrs = { ...(m.attributes as Record<string, string>) };
    const side = take(attrs, "span.kind") || defaultSide;
    const buckets = (m.latency_buckets as number[]) ?? [];
    const counts = [...((m.latency_counts as number[]) ?? [])];
    while (counts.length < buckets.length + 1) counts.push(0);
    return {
      attrs,
      window: {
        seq_id: m.seq_id,
        timestamp_ms: m.timestamp,
        window_start_ms: m.timestamp,
        service_name: m.service_name,
        side,
        latency_buckets_ms: buckets,
        latency_counts: counts,
        count,
        sum_ms: 0,
        source: "pull",
      },
    };
  };
  const json = (attrs: Record<string, string>) => JSON.stringify(attrs);
  return {
    agent_id: agentId,
    session_id: sessionId,
    http: (response.http_metrics as Obj[]).map((m) => {
      const w = window(m, m.request_count, "server");
      return {
        window: { ...w.window, attributes_json: json(w.attrs) },
        method: m.http_method,
        route: m.http_route,
        status_code: m.http_status_code,
      };
    }),
    grpc: (response.grpc_metrics as Obj[]).map((m) => {
      const w = window(m, m.request_count, "server");
      return {
        window: { ...w.window, attributes_json: json(w.attrs) },
        method: m.grpc_method,
        status_code: m.grpc_status_code,
      };
    }),
    sql: (response.sql_metrics as Obj[]).map((m) => {
      const w = window(m, m.query_count, "client");
      const dbSystem = take(w.attrs, "db.system.name");
      const errorType = take(w.attrs, "error.type");
      return {
        window: { ...w.window, attributes_json: json(w.attrs) },
        db_system: dbSystem,
        operation: m.sql_operation,
        table: m.table_name,
        error_type: errorType,
      };
    }),
    spans: (response.trace_spans as Obj[]).map((s) => ({
      seq_id: s.seq_id,
      trace_id: s.trace_id,
      span_id: s.span_id,
      parent_span_id: s.parent_span_id,
      service_name: s.service_name,
      name: s.span_name,
      kind: s.span_kind,
      start_time_us: Number(s.start_time) * 1000,
      duration_us: s.duration_us,
      status_code: s.status_code,
      attributes_json: json(s.attributes as Record<string, string>),
      process_pid: s.process_pid,
      source: "pull",
    })),
  };
}

function take(attrs: Record<string, string>, key: string): string {
  const value = attrs[key] ?? "";
  delete attrs[key];
  return value;
}
