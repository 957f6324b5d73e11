/**
 * OTLP/gRPC receiver: `TraceService/Export` and `MetricsService/Export`,
 * served by grpc-js (Deno.serve cannot send the trailers gRPC needs). The
 * request message reaches the handler as raw protobuf bytes, so both
 * transports share one decoder.
 */
import * as grpc from "@grpc/grpc-js";
import type { Counters } from "../../model/counters.ts";
import { bearerTokenMatches } from "./auth.ts";
import { classifyFailure, grpcStatusOf, OtlpRequestError } from "./errors.ts";
import type { ExportHandler, OtlpSignal } from "./export_handler.ts";
import { encodeExportResponse } from "./responses.ts";

export interface GrpcReceiverOptions {
  listen: string;
  maxBodyBytes: number;
  bearerToken?: string;
  handler: ExportHandler;
  counters: Counters;
}

const SERVICES: Record<OtlpSignal, string> = {
  traces: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
  metrics: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
};

const passBytes = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

function serviceDefinition(signal: OtlpSignal): grpc.ServiceDefinition {
  return {
    Export: {
      path: SERVICES[signal],
      requestStream: false,
      responseStream: false,
      requestSerialize: passBytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: passBytes,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  };
}

export class OtlpGrpcReceiver {
  #server: grpc.Server | undefined;
  #port = 0;
  readonly #options: GrpcReceiverOptions;

  constructor(options: GrpcReceiverOptions) {
    this.#options = options;
  }

  /** The bound address (useful with port 0). */
  get address(): string {
    const listen = this.#options.listen;
    return `${listen.slice(0, listen.lastIndexOf(":"))}:${this.#port}`;
  }

  start(): Promise<void> {
    const server = new grpc.Server({
      "grpc.max_receive_message_length": this.#options.maxBodyBytes,
    });
    for (const signal of ["traces", "metrics"] as const) {
      server.addService(serviceDefinition(signal), {
        Export: (
          call: grpc.ServerUnaryCall<Buffer, Uint8Array>,
          callback: grpc.sendUnaryData<Uint8Array>,
        ) => this.#handle(signal, call, callback),
      });
    }
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.bindAsync(
        this.#options.listen,
        grpc.ServerCredentials.createInsecure(),
        (error, port) => {
          if (error) {
            reject(
              new Error(
                `Cannot listen for OTLP/gRPC on ${this.#options.listen}: ${error.message}`,
                { cause: error },
              ),
            );
            return;
          }
          this.#port = port;
          resolve();
        },
      );
    });
  }

  shutdown(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), 5000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async #handle(
    signal: OtlpSignal,
    call: grpc.ServerUnaryCall<Buffer, Uint8Array>,
    callback: grpc.sendUnaryData<Uint8Array>,
  ): Promise<void> {
    const counters = this.#options.counters;
    counters.add("otlp_grpc.requests");
    try {
      const token = call.metadata.get("authorization")[0];
      if (
        !bearerTokenMatches(
          this.#options.bearerToken,
          typeof token === "string" ? token : token?.toString(),
        )
      ) {
        throw new OtlpRequestError(
          "unauthenticated",
          "missing or wrong bearer token",
        );
      }
      const outcome = await this.#options.handler.export(
        signal,
        call.request,
        "protobuf",
      );
      counters.add(`otlp_grpc.${signal}.ok`);
      callback(null, encodeExportResponse(signal, outcome, "protobuf"));
    } catch (error) {
      const { kind, message } = classifyFailure(error);
      counters.add(`otlp_grpc.failed.${kind}`);
      callback({ code: grpcStatusOf(kind), details: message });
    }
  }
}
