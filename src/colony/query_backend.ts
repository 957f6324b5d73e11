/**
 * The colony's answers to the query API (src/serve/query_api.ts): the
 * agent's queries over the colony's store, one row per agent and series
 * (an `agent` field), narrowed with `agent=`.
 *
 * @module
 */
import type { Counters } from "../model/counters.ts";
import {
  queryGrpc,
  queryHttp,
  querySql,
  queryTraces,
} from "../store/queries.ts";
import type {
  QueryBackend,
  RedAnswer,
  RedQuery,
  StatusReport,
  TraceAnswer,
  TraceQuery,
} from "../serve/query_backend.ts";
import { VERSION } from "../version.ts";
import type { ColonyStore } from "./store.ts";

const RED_QUERIES = { http: queryHttp, grpc: queryGrpc, sql: querySql };

export interface ColonyLive {
  startedAt: number;
  counters: Counters;
  listen: () => string;
  config: string[];
}

export class ColonyQueryBackend implements QueryBackend {
  constructor(
    private readonly store: ColonyStore,
    private readonly live: ColonyLive,
  ) {}

  async red(query: RedQuery): Promise<RedAnswer> {
    const nowMs = Date.now();
    const result: { rows: RedAnswer["rows"]; total: RedAnswer["total"] } =
      await RED_QUERIES[query.kind](this.store.connection, {
        service: query.service,
        sinceMs: nowMs - query.sinceMs,
        nowMs,
        route: query.route,
        side: query.kind === "sql" && query.side === "server"
          ? undefined
          : query.side,
        agent: query.agent,
        byAgent: true,
      });
    return {
      kind: query.kind,
      since_ms: query.sinceMs,
      side: query.side,
      rows: result.rows,
      total: result.total,
    };
  }

  async traces(query: TraceQuery): Promise<TraceAnswer> {
    const traces = await queryTraces(this.store.connection, {
      service: query.service,
      agent: query.agent,
      traceId: query.traceId,
      sinceMs: Date.now() - query.sinceMs,
      minDurationMs: query.minDurationMs,
      limit: query.limit,
      withAgent: true,
    });
    return { traces };
  }

  async status(): Promise<StatusReport> {
    const rows = await this.store.rowCounts();
    return {
      version: VERSION,
      source: "colony",
      uptime_s: Math.round((Date.now() - this.live.startedAt) / 1000),
      config: this.live.config,
      receivers: { colony: { listen: this.live.listen() } },
      counters: this.live.counters.snapshot(),
      storage: {
        path: this.store.path,
        rows: rows.tables,
        rows_per_agent: rows.agents,
        agents: await this.store.agents(),
        checkpoints: this.store.checkpoints(),
      },
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
