/**
 * The agent's query API on `agent.api_listen`: the CLI asks here because one
 * DuckDB file has one writer. JSON in the query string, JSON out.
 *
 *   GET /api/v1/query/http|grpc|sql?service=&since_ms=&route=&side=
 *   GET /api/v1/query/traces?service=&trace_id=&since_ms=&min_duration_ms=&limit=
 *   (any query also takes agent=ID: only that agent's rows)
 *   GET /api/v1/status
 *   GET /healthz
 *   GET /metrics   (Prometheus text format, when given `metrics`)
 *   POST /coral.agent.v1.AgentService/QueryEbpfMetrics (Connect, when given
 *     in `rpc`; see agent_service.ts)
 */
import type { QueryBackend, RedKind } from "./query_backend.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";
import { boundAddress, serveOn } from "./listen.ts";

const RED_KINDS = new Set<string>(["http", "grpc", "sql"]);
const MAX_TRACES = 1000;

/** A query parameter that is present but wrong. */
class BadParameter extends Error {}

export class QueryApiServer {
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;

  constructor(
    private readonly listen: string,
    private readonly backend: QueryBackend,
    /** Serves `GET /metrics` (e.g. a `PrometheusExposition`). */
    private readonly options: {
      metrics?: { render(): string };
      /** POST handlers by path (Connect RPCs, e.g. QueryEbpfMetrics). */
      rpc?: Record<string, (request: Request) => Promise<Response>>;
    } = {},
  ) {}

  get address(): string {
    return boundAddress(this.#server);
  }

  start(): Promise<void> {
    this.#server = serveOn(
      this.listen,
      "the query API",
      (request) => this.handle(request),
    );
    return Promise.resolve();
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.shutdown();
  }

  /**
   * Answers one request (the colony mounts this beside its RPCs on one
   * listener). `agent=ID` narrows any query to one agent.
   */
  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const params = url.searchParams;
    try {
      const rpc = this.options.rpc?.[url.pathname];
      if (rpc !== undefined) return await rpc(request);
      if (request.method !== "GET") {
        return json({ error: `${request.method} not allowed` }, 405);
      }
      if (url.pathname === "/healthz") return json({ ok: true });
      if (url.pathname === "/metrics" && this.options.metrics) {
        return new Response(this.options.metrics.render(), {
          headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
        });
      }
      if (url.pathname === "/api/v1/status") {
        return json(await this.backend.status());
      }
      const match = /^\/api\/v1\/query\/([a-z]+)$/.exec(url.pathname);
      if (match?.[1] === "traces") {
        return json(
          await this.backend.traces({
            service: params.get("service") ?? undefined,
            agent: params.get("agent") ?? undefined,
            traceId: params.get("trace_id") ?? undefined,
            sinceMs: numberParam(params, "since_ms", 3_600_000),
            minDurationMs: params.has("min_duration_ms")
              ? numberParam(params, "min_duration_ms", 0)
              : undefined,
            limit: Math.min(numberParam(params, "limit", 20), MAX_TRACES),
          }),
        );
      }
      if (match && RED_KINDS.has(match[1]!)) {
        const side = params.get("side") ?? "server";
        if (side !== "server" && side !== "client") {
          throw new BadParameter(
            `side: expected server or client, got ${side}`,
          );
        }
        return json(
          await this.backend.red({
            kind: match[1] as RedKind,
            service: params.get("service") ?? undefined,
            agent: params.get("agent") ?? undefined,
            sinceMs: numberParam(params, "since_ms", 3_600_000),
            route: params.get("route") ?? undefined,
            side,
          }),
        );
      }
      return json({ error: `no such endpoint: ${url.pathname}` }, 404);
    } catch (error) {
      if (error instanceof BadParameter) {
        return json({ error: error.message }, 400);
      }
      const message = error instanceof Error ? error.message : String(error);
      return json({ error: `query failed: ${message}` }, 500);
    }
  }
}

function numberParam(
  params: URLSearchParams,
  name: string,
  fallback: number,
): number {
  const text = params.get(name);
  if (text === null) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new BadParameter(
      `${name}: expected a non-negative number, got "${text}"`,
    );
  }
  return value;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}
