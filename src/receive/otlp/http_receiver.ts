/**
 * OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/metrics` with
 * protobuf or JSON bodies, optionally gzip-compressed, answered only once
 * what was accepted is durable.
 */
import type { Counters } from "../../model/counters.ts";
import { bearerTokenMatches } from "./auth.ts";
import { readLimitedBody } from "./body_reader.ts";
import {
  classifyFailure,
  grpcStatusOf,
  httpStatusOf,
  OtlpRequestError,
} from "./errors.ts";
import type {
  ExportHandler,
  OtlpFormat,
  OtlpSignal,
} from "./export_handler.ts";
import { encodeExportResponse, encodeStatus } from "./responses.ts";
import { boundAddress, serveOn } from "../../serve/listen.ts";

export interface HttpReceiverOptions {
  listen: string;
  maxBodyBytes: number;
  bearerToken?: string;
  handler: ExportHandler;
  counters: Counters;
}

const PATHS: Record<string, OtlpSignal> = {
  "/v1/traces": "traces",
  "/v1/metrics": "metrics",
};

const CONTENT_TYPES: Record<OtlpFormat, string> = {
  protobuf: "application/x-protobuf",
  json: "application/json",
};

export class OtlpHttpReceiver {
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #options: HttpReceiverOptions;

  constructor(options: HttpReceiverOptions) {
    this.#options = options;
  }

  /** The bound address (useful with port 0). */
  get address(): string {
    return boundAddress(this.#server);
  }

  start(): Promise<void> {
    this.#server = serveOn(
      this.#options.listen,
      "OTLP/HTTP",
      (request) => this.#handle(request),
      (error) => {
        this.#options.counters.add("otlp_http.failed.internal");
        return new Response(`internal error: ${error}`, { status: 500 });
      },
    );
    return Promise.resolve();
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.shutdown();
  }

  async #handle(request: Request): Promise<Response> {
    const counters = this.#options.counters;
    const format = formatOf(request.headers.get("content-type"));
    counters.add("otlp_http.requests");
    try {
      const signal = PATHS[new URL(request.url).pathname];
      if (signal === undefined) {
        throw new OtlpRequestError(
          "not_found",
          `no OTLP endpoint at ${
            new URL(request.url).pathname
          }: use /v1/traces or /v1/metrics`,
        );
      }
      if (request.method !== "POST") {
        throw new OtlpRequestError(
          "method_not_allowed",
          `${request.method} is not allowed: OTLP/HTTP takes POST`,
        );
      }
      if (
        !bearerTokenMatches(
          this.#options.bearerToken,
          request.headers.get("authorization"),
        )
      ) {
        throw new OtlpRequestError(
          "unauthenticated",
          "missing or wrong bearer token",
        );
      }
      if (format === undefined) {
        throw new OtlpRequestError(
          "unsupported_media_type",
          `unsupported Content-Type "${
            request.headers.get("content-type") ?? ""
          }": use application/x-protobuf or application/json`,
        );
      }
      const body = await readLimitedBody(request, this.#options.maxBodyBytes);
      const outcome = await this.#options.handler.export(signal, body, format);
      counters.add(`otlp_http.${signal}.ok`);
      return new Response(encodeExportResponse(signal, outcome, format), {
        status: 200,
        headers: { "content-type": CONTENT_TYPES[format] },
      });
    } catch (error) {
      const { kind, message } = classifyFailure(error);
      counters.add(`otlp_http.failed.${kind}`);
      const answerFormat = format ?? "json";
      const headers: Record<string, string> = {
        "content-type": CONTENT_TYPES[answerFormat],
      };
      if (kind === "unavailable") headers["retry-after"] = "1";
      if (kind === "unauthenticated") headers["www-authenticate"] = "Bearer";
      await request.body?.cancel().catch(() => {});
      return new Response(
        encodeStatus(grpcStatusOf(kind), message, answerFormat),
        { status: httpStatusOf(kind), headers },
      );
    }
  }
}

function formatOf(contentType: string | null): OtlpFormat | undefined {
  const mediaType = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType === "application/x-protobuf") return "protobuf";
  if (mediaType === "application/protobuf") return "protobuf";
  if (mediaType === "application/json") return "json";
  return undefined;
}
