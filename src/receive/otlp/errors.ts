/**
 * The one place that maps the receiver's failures to HTTP and gRPC status
 * codes, and says whether a client's retry can help (OTLP retries 429, 502,
 * 503, 504 and gRPC UNAVAILABLE).
 */
import { status as GrpcStatus } from "@grpc/grpc-js";

export type FailureKind =
  | "bad_request"
  | "unauthenticated"
  | "too_large"
  | "unsupported_media_type"
  | "not_found"
  | "method_not_allowed"
  | "unavailable"
  | "internal";

/** A request the receiver refuses, with the reason a client can read. */
export class OtlpRequestError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "OtlpRequestError";
  }
}

const HTTP_STATUS: Record<FailureKind, number> = {
  bad_request: 400,
  unauthenticated: 401,
  too_large: 413,
  unsupported_media_type: 415,
  not_found: 404,
  method_not_allowed: 405,
  unavailable: 503,
  internal: 500,
};

const GRPC_STATUS: Record<FailureKind, GrpcStatus> = {
  bad_request: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  unsupported_media_type: GrpcStatus.INVALID_ARGUMENT,
  not_found: GrpcStatus.UNIMPLEMENTED,
  method_not_allowed: GrpcStatus.UNIMPLEMENTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  internal: GrpcStatus.INTERNAL,
};

export function httpStatusOf(kind: FailureKind): number {
  return HTTP_STATUS[kind];
}

export function grpcStatusOf(kind: FailureKind): GrpcStatus {
  return GRPC_STATUS[kind];
}

/** Whether the client may send the same request again later. */
export function isRetryable(kind: FailureKind): boolean {
  return kind === "unavailable";
}

/**
 * Classifies any error thrown while handling an export. Errors from other
 * modules are recognised by their `name`, so this file needs none of them.
 */
export function classifyFailure(
  error: unknown,
): { kind: FailureKind; message: string } {
  if (error instanceof OtlpRequestError) {
    return { kind: error.kind, message: error.message };
  }
  const name = error instanceof Error ? error.name : "";
  const message = error instanceof Error ? error.message : String(error);
  if (name === "OtlpDecodeError") return { kind: "bad_request", message };
  if (name === "StoreFullError") {
    return {
      kind: "unavailable",
      message: `store is full, retry later: ${message}`,
    };
  }
  return { kind: "internal", message: `internal error: ${message}` };
}
