/**
 * Answers the CLI's questions from a DuckDB store: inside the running agent
 * (with its live counters) and for `--db FILE` (the file alone).
 */
import type { CapabilityReport } from "../../ffi/libbpf/mod.ts";
import type { BeylaConfig } from "../config/schema.ts";
import type { Counters } from "../model/counters.ts";
import type { DuckDBConnection } from "@duckdb/node-api";
import { DuckDbStore } from "../store/store.ts";
import {
  queryGrpc,
  queryHttp,
  querySql,
  queryTraces,
} from "../store/queries.ts";
import { VERSION } from "../version.ts";
import {
  beylaCapabilities,
  capabilitiesStatus,
  type CaptureState,
} from "./capabilities.ts";
import type {
  QueryBackend,
  RedAnswer,
  RedQuery,
  StatusReport,
  TraceAnswer,
  TraceQuery,
} from "./query_backend.ts";

/** What only a running agent knows. */
export interface LiveState {
  agentId: string;
  startedAt: number;
  counters: Counters;
  receivers: Record<string, { listen: string }>;
  config: string[];
  beyla: BeylaConfig;
  /** The probe taken at start. */
  capabilities: CapabilityReport;
  capture: CaptureState;
  /** The colony forwarder's state, when `forward.colony_url` is set. */
  forward?: () => Promise<unknown>;
}

const RED_QUERIES = { http: queryHttp, grpc: queryGrpc, sql: querySql };

/**
 * `query http|grpc|sql` over a store's connection; `byAgent` adds the agent
 * column (the colony's answers).
 */
export async function answerRed(
  connection: DuckDBConnection,
  query: RedQuery,
  options: { byAgent?: boolean } = {},
): Promise<RedAnswer> {
  const nowMs = Date.now();
  const result: { rows: RedAnswer["rows"]; total: RedAnswer["total"] } =
    await RED_QUERIES[query.kind](connection, {
      service: query.service,
      sinceMs: nowMs - query.sinceMs,
      nowMs,
      route: query.route,
      agent: query.agent,
      // Database calls are client calls: SQL is filtered by side only when
      // asked for the other side explicitly.
      side: query.kind === "sql" && query.side === "server"
        ? undefined
        : query.side,
      ...(options.byAgent ? { byAgent: true } : {}),
    });
  return {
    kind: query.kind,
    since_ms: query.sinceMs,
    side: query.side,
    rows: result.rows,
    total: result.total,
  };
}

/** `query traces` over a store's connection; `withAgent` adds each span's agent. */
export async function answerTraces(
  connection: DuckDBConnection,
  query: TraceQuery,
  options: { withAgent?: boolean } = {},
): Promise<TraceAnswer> {
  const traces = await queryTraces(connection, {
    service: query.service,
    agent: query.agent,
    traceId: query.traceId,
    sinceMs: Date.now() - query.sinceMs,
    minDurationMs: query.minDurationMs,
    limit: query.limit,
    ...(options.withAgent ? { withAgent: true } : {}),
  });
  return { traces };
}

export class StoreQueryBackend implements QueryBackend {
  constructor(
    private readonly store: DuckDbStore,
    private readonly options: { live?: LiveState; closeStore?: boolean } = {},
  ) {}

  red(query: RedQuery): Promise<RedAnswer> {
    return answerRed(this.store.connection, query);
  }

  traces(query: TraceQuery): Promise<TraceAnswer> {
    return answerTraces(this.store.connection, query);
  }

  async status(): Promise<StatusReport> {
    const stats = await this.store.stats();
    const storage = {
      path: stats.path,
      file_bytes: stats.fileBytes,
      wal_bytes: stats.walBytes,
      session_id: stats.sessionId,
      rows: stats.rows,
      max_seq_ids: stats.maxSeqIds,
    };
    const live = this.options.live;
    if (!live) {
      return { version: VERSION, source: "database", counters: {}, storage };
    }
    return {
      version: VERSION,
      source: "agent",
      agent_id: live.agentId,
      uptime_s: Math.round((Date.now() - live.startedAt) / 1000),
      config: live.config,
      receivers: live.receivers,
      capabilities: capabilitiesStatus(live.capabilities, live.capture),
      beyla_capabilities: beylaCapabilities(
        live.beyla,
        live.capabilities,
        live.capture.stats !== undefined,
      ),
      counters: live.counters.snapshot(),
      storage: { ...storage, pending_rows: this.store.pendingRows },
      ...(live.forward ? { forward: await live.forward() } : {}),
      memory: memoryReport(),
    };
  }

  async close(): Promise<void> {
    if (this.options.closeStore) await this.store.close();
  }
}

/** The agent process's memory, in bytes. */
function memoryReport(): Record<string, number> {
  const usage = Deno.memoryUsage();
  return {
    rss: usage.rss,
    heap_total: usage.heapTotal,
    heap_used: usage.heapUsed,
    external: usage.external,
  };
}

/** `--db FILE`: reads a stopped agent's database. */
export async function openDatabaseBackend(path: string): Promise<QueryBackend> {
  try {
    await Deno.stat(path);
  } catch {
    throw new Error(`database file not found: ${path}`);
  }
  const store = await DuckDbStore.openReadOnly(path);
  return new StoreQueryBackend(store, { closeStore: true });
}
