/**
 * Encodes what the OTLP receivers answer: the Export response with its
 * partial-success counts, and `google.rpc.Status` bodies for failures, in
 * protobuf or JSON as the request was.
 */
import protobuf from "protobufjs";
import type {
  ExportOutcome,
  OtlpFormat,
  OtlpSignal,
} from "./export_handler.ts";

const REJECTED_FIELD: Record<OtlpSignal, string> = {
  traces: "rejectedSpans",
  metrics: "rejectedDataPoints",
};

/**
 * `Export*ServiceResponse { partial_success = 1 { rejected = 1 (int64);
 * error_message = 2 } }`; both signals number their fields the same way.
 */
export function encodeExportResponse(
  signal: OtlpSignal,
  outcome: ExportOutcome,
  format: OtlpFormat,
): Uint8Array<ArrayBuffer> {
  const partial = outcome.rejected > 0 || outcome.errorMessage !== "";
  if (format === "json") {
    const body = partial
      ? {
        partialSuccess: {
          [REJECTED_FIELD[signal]]: String(outcome.rejected),
          errorMessage: outcome.errorMessage,
        },
      }
      : {};
    return new TextEncoder().encode(JSON.stringify(body));
  }
  if (!partial) return new Uint8Array(0);
  const inner = protobuf.Writer.create();
  if (outcome.rejected > 0) inner.uint32(8).int64(outcome.rejected);
  if (outcome.errorMessage) inner.uint32(18).string(outcome.errorMessage);
  return protobuf.Writer.create().uint32(10).bytes(inner.finish())
    .finish() as Uint8Array<ArrayBuffer>;
}

/** `google.rpc.Status { code = 1; message = 2 }`. */
export function encodeStatus(
  grpcCode: number,
  message: string,
  format: OtlpFormat,
): Uint8Array<ArrayBuffer> {
  if (format === "json") {
    return new TextEncoder().encode(
      JSON.stringify({ code: grpcCode, message }),
    );
  }
  const writer = protobuf.Writer.create();
  if (grpcCode !== 0) writer.uint32(8).int32(grpcCode);
  if (message) writer.uint32(18).string(message);
  return writer.finish() as Uint8Array<ArrayBuffer>;
}
