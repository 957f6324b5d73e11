/**
 * The colony's answers to the query API (src/serve/query_api.ts): the
 * agent's queries over the colony's store, one row per agent and series
 * (an `agent` field), narrowed with `agent=`.
 *
 * @module
 */
import type { Counters } from "../model/counters.ts";
import { answerRed, answerTraces } from "../serve/store_backend.ts";
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

  red(query: RedQuery): Promise<RedAnswer> {
    return answerRed(this.store.connection, query, { byAgent: true });
  }

  traces(query: TraceQuery): Promise<TraceAnswer> {
    return answerTraces(this.store.connection, query, { withAgent: true });
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
