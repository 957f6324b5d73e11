/** Asks a running agent's query API (the CLI side of src/serve/query_api.ts). */
import type {
  QueryBackend,
  RedAnswer,
  RedQuery,
  StatusReport,
  TraceAnswer,
  TraceQuery,
} from "../serve/query_backend.ts";

/** The agent could not be reached, or answered with an error. */
export class AgentUnreachableError extends Error {
  override name = "AgentUnreachableError";
}

export class AgentClient implements QueryBackend {
  constructor(readonly baseUrl: string) {}

  red(query: RedQuery): Promise<RedAnswer> {
    return this.#get<RedAnswer>(`/api/v1/query/${query.kind}`, {
      service: query.service,
      agent: query.agent,
      since_ms: query.sinceMs,
      route: query.route,
      side: query.side,
    });
  }

  traces(query: TraceQuery): Promise<TraceAnswer> {
    return this.#get<TraceAnswer>("/api/v1/query/traces", {
      service: query.service,
      agent: query.agent,
      trace_id: query.traceId,
      since_ms: query.sinceMs,
      min_duration_ms: query.minDurationMs,
      limit: query.limit,
    });
  }

  status(): Promise<StatusReport> {
    return this.#get<StatusReport>("/api/v1/status", {});
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async #get<T>(
    path: string,
    params: Record<string, string | number | undefined>,
  ): Promise<T> {
    const url = new URL(path, this.baseUrl);
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new AgentUnreachableError(
        `cannot reach the agent at ${this.baseUrl} (${
          detail.split("\n")[0]
        }); is it running? Point at it with --agent URL or --config FILE, or read a stopped agent's file with --db FILE`,
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = JSON.parse(text).error ?? text;
      } catch { /* plain text */ }
      throw new AgentUnreachableError(
        `the agent at ${this.baseUrl} answered ${response.status}: ${message}`,
      );
    }
    return JSON.parse(text) as T;
  }
}
