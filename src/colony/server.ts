/**
 * The colony's HTTP listener: the Connect RPC agents push to, and the query
 * API (src/serve/query_api.ts) for the CLI, on one address (HTTPS when
 * `colony.tls` is set).
 *
 *   POST /coral.colony.v1.ColonyService/PushBatch   (application/proto or application/json)
 *   GET  /api/v1/query/http|grpc|sql|traces?…&agent=ID, /api/v1/status, /healthz
 *
 * PushBatch answers Connect errors: 401 unauthenticated (wrong or missing
 * bearer token, unknown agent when registration is required), 400
 * invalid_argument (malformed batch: which row, which field), 413, 415,
 * 503 unavailable (storing failed; retry). Nothing of a refused batch is
 * stored. Counters: `colony.push.accepted`, `colony.push.rejected.<reason>`.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import type { Counters } from "../model/counters.ts";
import type { RecordBatch } from "../model/records.ts";
import { QueryApiServer } from "../serve/query_api.ts";
import type { QueryBackend } from "../serve/query_backend.ts";
import { splitHostPort } from "../serve/listen.ts";
import { messageType, snakeKeys, toPlain } from "./proto.ts";
import { MalformedBatchError, readPushBatch } from "./rows.ts";
import type { ColonyStore } from "./store.ts";

export const PUSH_PATH = "/coral.colony.v1.ColonyService/PushBatch";

export interface ColonyServerOptions {
  listen: string;
  tls?: { cert: string; key: string };
  store: ColonyStore;
  backend: QueryBackend;
  counters: Counters;
  /** Agent id → token. */
  tokens: Map<string, string>;
  requireRegistration: boolean;
  maxBodyBytes: number;
  /** Sees every batch of rows stored (e.g. Prometheus /metrics). */
  onStored?: (agentId: string, batch: RecordBatch) => void;
  /** Extra routes (e.g. "/metrics"), answered before the query API. */
  routes?: Record<string, (request: Request) => Promise<Response> | Response>;
}

/** A refused request, as a Connect error. */
class ConnectError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export class ColonyServer {
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #query: QueryApiServer;

  constructor(private readonly options: ColonyServerOptions) {
    this.#query = new QueryApiServer(options.listen, options.backend);
  }

  get address(): string {
    const addr = this.#server?.addr;
    return addr ? `${addr.hostname}:${addr.port}` : "";
  }

  start(): Promise<void> {
    const { hostname, port } = splitHostPort(this.options.listen);
    const tls = this.options.tls;
    try {
      this.#server = Deno.serve({
        hostname,
        port,
        onListen: () => {},
        ...(tls ? { cert: tls.cert, key: tls.key } : {}),
      }, (request) => this.#route(request));
    } catch (error) {
      throw new Error(
        `Cannot listen for the colony on ${this.options.listen}`,
        { cause: error },
      );
    }
    return Promise.resolve();
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.shutdown();
  }

  #route(request: Request): Promise<Response> | Response {
    const path = new URL(request.url).pathname;
    if (path === PUSH_PATH) return this.#push(request);
    const route = this.options.routes?.[path];
    if (route) return route(request);
    return this.#query.handle(request);
  }

  async #push(request: Request): Promise<Response> {
    const counters = this.options.counters;
    let json = false;
    try {
      if (request.method !== "POST") {
        throw new ConnectError(
          405,
          "unimplemented",
          `${request.method} not allowed: use POST`,
          "method",
        );
      }
      const type = (request.headers.get("content-type") ?? "").split(";")[0]!
        .trim().toLowerCase();
      json = type === "application/json";
      if (!json && type !== "application/proto") {
        throw new ConnectError(
          415,
          "invalid_argument",
          `unsupported content-type "${type}": expected application/proto or application/json`,
          "content_type",
        );
      }
      const presented = bearer(request.headers.get("authorization"));
      if (presented === undefined) {
        await request.body?.cancel();
        throw new ConnectError(
          401,
          "unauthenticated",
          "missing bearer token (Authorization: Bearer <token>)",
          "missing_token",
        );
      }
      if (
        this.options.requireRegistration &&
        ![...this.options.tokens.values()].some((t) => sameToken(t, presented))
      ) {
        await request.body?.cancel();
        throw new ConnectError(
          401,
          "unauthenticated",
          "wrong bearer token",
          "wrong_token",
        );
      }
      const body = await readBody(request, this.options.maxBodyBytes);
      const decoded = decode(body, json);
      const batch = readPushBatch(decoded);
      this.#authorize(batch.agentId, presented);
      let result;
      try {
        result = await this.options.store.apply(batch, "push");
      } catch (error) {
        throw new ConnectError(
          503,
          "unavailable",
          `cannot store the batch, retry later: ${(error as Error).message}`,
          "store_error",
        );
      }
      counters.add("colony.push.accepted");
      if (result.stored > 0) {
        this.options.onStored?.(batch.agentId, result.batch);
      }
      const response = {
        http_acked_seq_id: result.acked.http,
        grpc_acked_seq_id: result.acked.grpc,
        sql_acked_seq_id: result.acked.sql,
        spans_acked_seq_id: result.acked.spans,
        stored: result.stored,
        duplicates: result.duplicates,
      };
      return json ? jsonResponse(response) : protoResponse(response);
    } catch (error) {
      await request.body?.cancel().catch(() => {});
      const e = error instanceof ConnectError
        ? error
        : error instanceof MalformedBatchError
        ? new ConnectError(
          400,
          "invalid_argument",
          `malformed batch: ${error.message}`,
          "malformed",
        )
        : new ConnectError(
          500,
          "internal",
          String((error as Error).message ?? error),
          "internal",
        );
      counters.add(`colony.push.rejected.${e.reason}`);
      return new Response(
        JSON.stringify({ code: e.code, message: e.message }),
        {
          status: e.status,
          headers: { "content-type": "application/json" },
        },
      );
    }
  }

  /** Checks the token against the agent's; unknown agents only when registration is optional. */
  #authorize(agentId: string, presented: string): void {
    const expected = this.options.tokens.get(agentId);
    if (expected === undefined) {
      if (this.options.requireRegistration) {
        throw new ConnectError(
          401,
          "unauthenticated",
          `unknown agent "${agentId}": registration is required`,
          "unknown_agent",
        );
      }
      return;
    }
    if (!sameToken(expected, presented)) {
      throw new ConnectError(
        401,
        "unauthenticated",
        `wrong bearer token for agent "${agentId}"`,
        "wrong_token",
      );
    }
  }
}

function bearer(header: string | null): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  return match?.[1]?.trim() || undefined;
}

function sameToken(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(request: Request, max: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > max) {
    throw new ConnectError(
      413,
      "resource_exhausted",
      `body of ${declared} bytes is larger than ${max}`,
      "too_large",
    );
  }
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.length > max) {
    throw new ConnectError(
      413,
      "resource_exhausted",
      `body of ${body.length} bytes is larger than ${max}`,
      "too_large",
    );
  }
  return body;
}

function decode(body: Uint8Array, json: boolean): unknown {
  if (json) {
    try {
      return snakeKeys(JSON.parse(new TextDecoder().decode(body)));
    } catch (error) {
      throw new MalformedBatchError(
        `invalid JSON: ${(error as Error).message}`,
      );
    }
  }
  const type = messageType("coral.colony.v1.PushBatchRequest");
  try {
    return toPlain(type, type.decode(body));
  } catch (error) {
    throw new MalformedBatchError(
      `invalid protobuf: ${(error as Error).message}`,
    );
  }
}

function protoResponse(response: Record<string, number>): Response {
  const type = messageType("coral.colony.v1.PushBatchResponse");
  const bytes = type.encode(type.fromObject(response)).finish();
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": "application/proto" },
  });
}

/** Proto3 JSON: lowerCamelCase names, 64-bit integers as strings. */
function jsonResponse(response: Record<string, number>): Response {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(response)) {
    const name = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    out[name] = key.endsWith("_seq_id") ? String(value) : value;
  }
  return new Response(JSON.stringify(out), {
    headers: { "content-type": "application/json" },
  });
}
